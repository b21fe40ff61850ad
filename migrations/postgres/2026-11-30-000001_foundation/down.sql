DROP TABLE throttles;
DROP TABLE sessions;
DROP TABLE users;
