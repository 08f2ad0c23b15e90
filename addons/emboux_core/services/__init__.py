from . import connector_client
from . import names
from . import secrets_box
