"""What the Supervisor and the community add-on linter require of an add-on's files.

Written here, in our own code, from their sources, so that a test can apply them to
config.yaml, translations/en.yaml and the add-on's folder without either tool:

- SUPERVISOR: home-assistant/supervisor at 090ef31ec024952c2469ed5a7c9f3ce8c1a5499e
  (2026.08.0). supervisor/apps/validate.py: ``_SCHEMA_APP_CONFIG`` (the manifest; unknown keys
  are dropped, which we report, since a key it drops is a mistake), ``_warn_app_config``
  (advisories it logs), ``SCHEMA_APP_TRANSLATIONS``; supervisor/apps/options.py:
  ``RE_SCHEMA_ELEMENT`` and ``AppOptions`` (how each option's value is checked against its
  type); supervisor/apps/build.py: ``AppBuild.create`` (build.yaml deprecated);
  supervisor/validate.py (``network_port``, ``docker_ports``); supervisor/const.py (arches,
  roles, INGRESS_DYNAMIC_PORT_*); supervisor/apps/const.py (``RE_SLUG``).
- LINTER: frenck/action-addon-linter at 2bd8faa8a6e3598b22bccf2dc809e7870b4f1244 (April
  2026). src/config.schema.json (keys, types, required keys, and the defaults that its
  src/lint.py ``check_is_default`` reports as "'KEY' should be removed, it uses a default
  value"), and the checks of src/lint.py that apply to a config file. Its "community" checks
  (version "dev", a build.json) are for the hassio-addons organisation's own repositories and
  are not applied.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import voluptuous as vol

SUPERVISOR = "home-assistant/supervisor@090ef31ec024952c2469ed5a7c9f3ce8c1a5499e"
LINTER = "frenck/action-addon-linter@2bd8faa8a6e3598b22bccf2dc809e7870b4f1244"

# -- the Supervisor ---------------------------------------------------------------------------

ARCHES = ["aarch64", "amd64"]  # const.py ARCH_ALL
DEPRECATED_ARCHES = ["armhf", "armv7", "i386"]  # const.py ARCH_DEPRECATED
ROLES = ["default", "homeassistant", "backup", "manager", "admin"]  # const.py ROLE_ALL
INGRESS_DYNAMIC_PORTS = range(62000, 65500 + 1)  # const.py INGRESS_DYNAMIC_PORT_MIN/MAX
MAPPINGS = [  # apps/const.py MappingType
    "data", "config", "ssl", "local_apps", "backup", "share", "media", "homeassistant_config",
    "all_app_configs", "app_config", "addons", "all_addon_configs", "addon_config",
]  # fmt: skip
CAPABILITIES = [  # docker/const.py Capabilities
    "BPF", "CHECKPOINT_RESTORE", "DAC_READ_SEARCH", "IPC_LOCK", "NET_ADMIN", "NET_RAW",
    "PERFMON", "SYS_ADMIN", "SYS_MODULE", "SYS_NICE", "SYS_PTRACE", "SYS_RAWIO",
    "SYS_RESOURCE", "SYS_TIME",
]  # fmt: skip
# apps/options.py: the option types of a schema, "?" making one optional.
OPTION_TYPE = re.compile(
    r"^(?:"
    r"|bool|email|url|port"
    r"|device(?:\((?P<filter>subsystem=[a-z]+)\))?"
    r"|str(?:\((?P<s_min>\d+)?,(?P<s_max>\d+)?\))?"
    r"|password(?:\((?P<p_min>\d+)?,(?P<p_max>\d+)?\))?"
    r"|int(?:\((?P<i_min>-?\d+)?,(?P<i_max>-?\d+)?\))?"
    r"|float(?:\((?P<f_min>-?\d*\.?\d+)?,(?P<f_max>-?\d*\.?\d+)?\))?"
    r"|match\((?P<match>.*)\)"
    r"|list\((?P<list>.+)\)"
    r")\??$"
)
port = vol.All(vol.Coerce(int), vol.Range(min=1, max=65535))  # validate.py network_port
docker_port = vol.All(str, vol.Match(r"^\d+(?:/tcp|/udp)?$"))
# validate.py version_tag is AwesomeVersion, which takes more; ours are dotted numbers.
version = vol.All(str, vol.Match(r"^\d+(\.\d+)*([.-]?[a-z0-9]+)?$"))
# apps/validate.py RE_VOLUME: a folder given as a string (an entry it cannot read is skipped).
VOLUME = re.compile(
    r"^(data|config|ssl|local_apps|addons|backup|share|media|homeassistant_config"
    r"|all_app_configs|all_addon_configs|app_config|addon_config)(?::(rw|ro))?$"
)


def _option_type(value: Any) -> Any:
    """A schema entry: a type, a one-element list of one, or a mapping of entries."""
    if isinstance(value, str):
        return vol.Match(OPTION_TYPE)(value)
    if isinstance(value, list) and len(value) == 1 and not isinstance(value[0], list):
        return [_option_type(value[0])]
    if isinstance(value, dict):
        return {str(key): _option_type(item) for key, item in value.items()}
    raise vol.Invalid(f"not an option type: {value!r}")


BOOLEANS = [
    "init", "advanced", "ingress", "ingress_stream", "panel_admin", "host_network", "host_pid",
    "host_ipc", "host_uts", "host_dbus", "udev", "tmpfs", "apparmor", "full_access", "audio",
    "video", "gpio", "usb", "uart", "devicetree", "kernel_modules", "realtime", "hassio_api",
    "homeassistant_api", "stdin", "legacy", "docker_api", "auth_api", "journald",
]  # fmt: skip

MANIFEST_KEYS: dict[Any, Any] = {
    vol.Required("name"): str,
    vol.Required("version"): version,
    vol.Required("slug"): vol.Match(r"^[-_.A-Za-z0-9]+$"),
    vol.Required("description"): str,
    vol.Required("arch"): [vol.In(ARCHES + DEPRECATED_ARCHES)],
    vol.Optional("machine"): [str],
    vol.Optional("url"): vol.Url(),
    vol.Optional("startup"): vol.In(["initialize", "system", "services", "application", "once"]),
    vol.Optional("boot"): vol.In(["auto", "manual", "manual_only"]),
    vol.Optional("stage"): vol.In(["stable", "experimental", "deprecated"]),
    vol.Optional("ports"): {docker_port: vol.Maybe(port)},
    vol.Optional("ports_description"): {docker_port: str},
    vol.Optional("watchdog"): vol.Match(
        r"^(?:https?|\[PROTO:\w+\]|tcp):\/\/\[HOST\]:(\[PORT:\d+\]|\d+).*$"
    ),
    vol.Optional("webui"): vol.Match(r"^(?:https?|\[PROTO:\w+\]):\/\/\[HOST\]:\[PORT:\d+\].*$"),
    vol.Optional("ingress_port"): vol.Any(port, 0),
    vol.Optional("ingress_entry"): str,
    vol.Optional("panel_icon"): str,
    vol.Optional("panel_title"): str,
    vol.Optional("homeassistant"): version,
    vol.Optional("devices"): [str],
    vol.Optional("map"): [
        vol.Any(
            vol.Match(VOLUME),
            {
                vol.Required("type"): vol.In(MAPPINGS),
                vol.Optional("read_only"): bool,
                vol.Optional("path"): str,
            },
        )
    ],
    vol.Optional("environment"): {vol.Match(r"\w*"): str},
    vol.Optional("privileged"): [vol.In(CAPABILITIES)],
    vol.Optional("hassio_role"): vol.In(ROLES),
    vol.Optional("services"): [vol.Match(r"^(mqtt|mysql):(provide|want|need)$")],
    vol.Optional("discovery"): [str],
    vol.Optional("backup_exclude"): [str],
    vol.Optional("backup_pre"): str,
    vol.Optional("backup_post"): str,
    vol.Optional("backup"): vol.In(["hot", "cold"]),
    vol.Optional("options"): dict,
    vol.Optional("schema"): vol.Any({str: _option_type}, False),
    vol.Optional("image"): vol.Match(r"^[a-z0-9{][a-z0-9.\-_{}/:]*$"),
    vol.Optional("ulimits"): dict,
    vol.Optional("timeout"): vol.All(int, vol.Range(min=10, max=300)),
    vol.Optional("breaking_versions"): [version],
    # vol.Boolean() there, which also takes "yes" and "on": ours are YAML's booleans.
    **{vol.Optional(name): bool for name in BOOLEANS},
}
SUPERVISOR_MANIFEST = vol.Schema(MANIFEST_KEYS)


def supervisor_problems(manifest: dict[str, Any]) -> list[str]:
    """What the Supervisor refuses, drops or warns about in a manifest.

    It drops a key it does not know (REMOVE_EXTRA) without a word; here that is a problem, as
    such a key is a mistake.
    """
    problems = []
    try:
        SUPERVISOR_MANIFEST(manifest)
    except vol.MultipleInvalid as error:
        for invalid in error.errors:
            if invalid.error_message == "extra keys not allowed":
                problems.append(
                    f"'{invalid.path[0]}' is not a manifest key: the Supervisor drops it"
                )
            else:
                problems.append(str(invalid))
    # _warn_app_config: what it logs for each add-on of a repository it reads.
    name = manifest.get("name")
    if "advanced" in manifest:
        problems.append(f"App '{name}' uses the deprecated 'advanced' config field")
    if deprecated := [arch for arch in manifest.get("arch", []) if arch in DEPRECATED_ARCHES]:
        problems.append(f"App '{name}' uses deprecated 'arch' values: {deprecated}")
    if "codenotary" in manifest:
        problems.append(f"App '{name}' uses the deprecated 'codenotary' config field")
    if manifest.get("ingress") and manifest.get("ingress_port") == 0:
        for container_port in manifest.get("ports", {}):
            if int(str(container_port).partition("/")[0]) in INGRESS_DYNAMIC_PORTS:
                problems.append(f"App '{name}' maps {container_port}, a dynamic ingress port")
    return problems


def build_file_problems(folder: Path) -> list[str]:
    """apps/build.py, AppBuild.create: a build.yaml (.yml, .json) is deprecated since 2026.04."""
    return [
        f"App uses {path.name} which is deprecated. Move build parameters into the Dockerfile"
        for path in sorted(folder.glob("build.*"))
        if path.suffix in (".yaml", ".yml", ".json")
    ]


def check_option(spec: str, value: Any) -> Any:
    """apps/options.py, AppOptions._single_validate: one value against its type."""
    match = OPTION_TYPE.match(spec)
    if match is None:
        raise vol.Invalid(f"Unknown type '{spec}'")
    if value is None:
        raise vol.Invalid("Missing required option")
    bounds: dict[str, Any] = {
        part[2:]: float(match[part])
        for part in ("i_min", "i_max", "f_min", "f_max", "s_min", "s_max", "p_min", "p_max")
        if match[part]
    }
    checks: dict[str, Callable[[Any], Any]] = {
        "str": vol.All(str, vol.Length(**bounds)),
        "password": vol.All(str, vol.Length(**bounds)),
        "int": vol.All(vol.Coerce(int), vol.Range(**bounds)),
        "float": vol.All(vol.Coerce(float), vol.Range(**bounds)),
        "bool": vol.Boolean(),
        "email": vol.Email(),
        "url": vol.Url(),
        "port": port,
        "match": lambda text: vol.Match(match["match"])(str(text)),
        "list": lambda text: vol.In(match["list"].split("|"))(str(text)),
    }
    kind = re.match(r"[a-z]+", spec)
    assert kind is not None and kind[0] in checks, f"type {spec!r} not covered here"
    return checks[kind[0]](value)


def option_problems(schema: dict[str, Any], options: dict[str, Any]) -> list[str]:
    """apps/options.py, AppOptions.__call__: the options the Supervisor would refuse to save
    (or to start the add-on with)."""
    problems = []
    for key, value in options.items():
        if key not in schema:
            problems.append(f"Option '{key}' does not exist in the schema")
            continue
        spec = schema[key]
        items = value if isinstance(spec, list) else [value]
        if isinstance(spec, list) and not isinstance(value, list):
            problems.append(f"Option '{key}': expected a list")
            continue
        for item in items:
            try:
                check_option(spec[0] if isinstance(spec, list) else spec, item)
            except vol.Invalid as error:
                problems.append(f"Option '{key}': {item!r}: {error}")
    for key, spec in schema.items():
        single = spec[0] if isinstance(spec, list) else spec
        if key not in options and not (isinstance(single, str) and single.endswith("?")):
            problems.append(f"Missing option '{key}'")
    return problems


_TRANSLATION: vol.Schema = vol.Schema(
    {
        vol.Required("name"): str,
        vol.Optional("description"): vol.Maybe(str),
        vol.Optional("fields"): {str: vol.Self},
    }
)
TRANSLATIONS = vol.Schema(
    {vol.Optional("configuration"): {str: _TRANSLATION}, vol.Optional("network"): {str: str}}
)


def translation_problems(translations: dict[str, Any]) -> list[str]:
    try:
        TRANSLATIONS(translations)
    except vol.MultipleInvalid as error:
        return [str(invalid) for invalid in error.errors]
    return []


# -- the add-on linter ------------------------------------------------------------------------

# config.schema.json: "required", and every property's "default" (where it has one).
LINTER_REQUIRED = ["arch", "description", "name", "slug", "version"]
LINTER_DEFAULTS: dict[str, Any] = {
    **dict.fromkeys(
        ["advanced", "audio", "auth_api", "auto_uart", "devicetree", "docker_api",
         "full_access", "gpio", "hassio_api", "homeassistant_api", "host_dbus", "host_ipc",
         "host_network", "host_pid", "host_uts", "ingress", "ingress_stream", "journald",
         "kernel_modules", "legacy", "realtime", "stdin", "tmpfs", "uart", "udev", "usb",
         "video", "homeassistant"],
        False,
    ),
    "apparmor": True, "init": True, "panel_admin": True,
    "backup": "hot", "boot": "auto", "hassio_role": "default", "panel_icon": "mdi:puzzle",
    "stage": "stable", "startup": "application",
    "ingress_port": 8099, "timeout": 10,
    "options": {}, "schema": {}, "ulimits": {},
}  # fmt: skip
LINTER_KEYS = {
    *LINTER_DEFAULTS,
    *LINTER_REQUIRED,
    *["arch", "backup_exclude", "backup_pre", "backup_post", "breaking_versions", "codenotary",
      "devices", "discovery", "environment", "image", "ingress_entry", "machine", "map",
      "panel_title", "ports", "ports_description", "privileged", "services", "url",
      "watchdog", "webui"],
}  # fmt: skip
LINTER_TYPES: dict[str, type | tuple[type, ...]] = {
    **{key: bool for key, default in LINTER_DEFAULTS.items() if isinstance(default, bool)},
    **dict.fromkeys(["description", "name", "slug", "version", "url", "image"], str),
    **dict.fromkeys(["panel_icon", "panel_title", "ingress_entry", "homeassistant"], str),
    **dict.fromkeys(["backup", "boot", "hassio_role", "stage", "startup"], str),
    **dict.fromkeys(["arch", "discovery", "devices", "machine", "map", "privileged"], list),
    **dict.fromkeys(["services", "backup_exclude", "breaking_versions"], list),
    **dict.fromkeys(["options", "schema", "ports", "ports_description", "environment"], dict),
    **dict.fromkeys(["ingress_port", "timeout"], int),
    **dict.fromkeys(["apparmor", "tmpfs"], (str, bool)),
}
LINTER_ENUMS = {
    "arch": ARCHES + DEPRECATED_ARCHES,
    "backup": ["hot", "cold"],
    "boot": ["auto", "manual", "manual_only"],
    "hassio_role": ["admin", "backup", "default", "homeassistant", "manager"],
    "stage": ["deprecated", "experimental", "stable"],
    "startup": ["application", "initialize", "once", "services", "system"],
}


def linter_problems(manifest: dict[str, Any]) -> list[str]:
    """What the add-on linter reports as errors in a config file."""
    problems = [f"'{key}' is a required property" for key in LINTER_REQUIRED if key not in manifest]
    for key, value in manifest.items():
        if key not in LINTER_KEYS:
            problems.append(f"Additional properties are not allowed ('{key}' was unexpected)")
        elif key in LINTER_DEFAULTS and value == LINTER_DEFAULTS[key]:
            problems.append(f"'{key}' should be removed, it uses a default value")
        expected = LINTER_TYPES.get(key)
        # JSON's integers are not its booleans; Python's bool is an int.
        if expected is not None and (
            not isinstance(value, expected) or (expected is int and isinstance(value, bool))
        ):
            problems.append(f"'{key}': {value!r} is not of type {expected}")
        allowed = LINTER_ENUMS.get(key, [])
        for item in (value if isinstance(value, list) else [value]) if allowed else []:
            if item not in allowed:
                problems.append(f"'{key}': {item!r} is not one of {allowed}")
    if manifest.get("ingress_port", 8099) not in range(0, 65536):
        problems.append("'ingress_port' is out of range")
    # lint.py's checks of a config file.
    if manifest.get("ingress") and manifest.get("webui"):
        problems.append("'webui' should be removed, Ingress is enabled.")
    if (
        manifest.get("ingress")
        and not manifest.get("host_network", False)
        and manifest.get("ingress_port", 8099) == 0
    ):
        problems.append("'ingress_port' this does not run on the host network.")
    if manifest.get("full_access") and any(
        key in manifest for key in ("devices", "gpio", "uart", "usb")
    ):
        problems.append("'full_access', don't add 'devices', 'uart', 'usb' or 'gpio'")
    if "auto_uart" in manifest:
        problems.append("'auto_uart' is deprecated, use 'uart' instead.")
    if any(":" in line for line in manifest.get("devices", [])):
        problems.append("'devices' uses a deprecated format")
    if not isinstance(manifest.get("tmpfs", False), bool):
        problems.append("'tmpfs' use a deprecated format, it is a boolean now.")
    if manifest.get("backup", "hot") == "cold":
        problems.extend(
            f"'{key}' is not valid when using cold backups."
            for key in ("backup_pre", "backup_post")
            if key in manifest
        )
    if manifest.get("watchdog"):
        problems.append("'watchdog', is obsolete. Use the native Docker HEALTHCHECK directive")
    if "codenotary" in manifest:
        problems.append("'codenotary' is deprecated and no longer used.")
    folders = {str(entry).partition(":")[0] for entry in manifest.get("map", [])}
    if "config" in folders and folders & {"homeassistant_config", "addon_config"}:
        problems.append("'map' contains both the 'config' folder and a conflicting one")
    return problems


def linter_warnings(manifest: dict[str, Any]) -> list[str]:
    """What the add-on linter warns about (it still passes)."""
    warnings = [
        f"Architecture '{arch}' is deprecated"
        for arch in manifest.get("arch", [])
        if arch in DEPRECATED_ARCHES
    ]
    if manifest.get("full_access"):
        warnings.append("'full_access' consider using other options instead")
    if manifest.get("advanced"):
        warnings.append("'advanced' flag is not recommended")
    if "config" in {str(entry).partition(":")[0] for entry in manifest.get("map", [])}:
        warnings.append("'map' contains the 'config' folder")
    return warnings
