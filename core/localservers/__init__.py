"""Real servers on 127.0.0.1 for the DR lab (lab/) and the tests' fixtures: processes run as an unprivileged
user and stopped by pid (procs), a PostgreSQL 16 server from the pgserver wheel (postgres), an OpenSSH server
(sshd). Not used by the application itself."""
