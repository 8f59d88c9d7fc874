"""What a setting *is*, whoever owns it: its declaration and its validators.

The core's settings and every engine's are declared the same way: fields of a frozen
dataclass made with :func:`setting`, each carrying a :class:`Spec` (its environment variable,
flag, validator, help, whether it is secret). This package knows no particular setting; the
assembled settings (:mod:`wyoming_bodhi.settings`) and the engines' plugins use it.
"""

from .spec import Alias, Kind, SettingsError, Spec, declarations_of, setting, switch

__all__ = ["Alias", "Kind", "SettingsError", "Spec", "declarations_of", "setting", "switch"]
