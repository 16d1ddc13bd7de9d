"""The aiohttp edge: auth, pages, WebSocket push, CSV, static files."""
