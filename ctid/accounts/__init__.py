"""Web accounts: users, their passwords and login sessions, kept in the database. A feature-level
package below `ctid.web` so the web reaches the database only through this public API."""
