"""A plugin for the tests: registers the recipe "plugin_image" (the built-in image recipe under
another name). Only modules that import it know the name: a Ray worker learns it from the
config's ``plugins``."""

from modalities import register_modality
from modalities.recipes import ImageRecipe


@register_modality("plugin_image")
class PluginImage(ImageRecipe):
    pass
