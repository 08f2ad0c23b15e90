from . import emboux_api_key_wizard
