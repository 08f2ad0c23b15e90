from . import connector_client
from . import names
from . import platform_adapter
from . import secrets_box
from . import usage
