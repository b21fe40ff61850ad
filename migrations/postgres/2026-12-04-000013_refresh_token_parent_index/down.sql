DROP INDEX refresh_tokens_parent;
