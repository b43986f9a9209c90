"""Ways of getting a PostgreSQL server to run tests against."""
