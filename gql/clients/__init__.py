"""Client accounts: the Clients page of the admin panel."""
