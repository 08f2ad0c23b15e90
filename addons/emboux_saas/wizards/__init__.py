from . import subdomain_import
