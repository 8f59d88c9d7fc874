"""A plugin that ends the program as it is imported."""

import sys

sys.exit("this plugin has had enough")
