-- RFC 7591 §2: the client authentication method a client registered.
-- NULL (clients added by an operator before this column existed, or without
-- naming one): either secret method for a confidential client.
ALTER TABLE clients ADD COLUMN token_endpoint_auth_method TEXT;
