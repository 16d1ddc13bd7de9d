"""KPI definitions and the queries that compute them from stored facts."""
