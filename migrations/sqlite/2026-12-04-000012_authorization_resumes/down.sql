DROP INDEX pending_authorizations_expiry;
DROP INDEX pending_authorizations_user;
DROP INDEX authorization_resumes_expiry;
DROP TABLE authorization_resumes;
