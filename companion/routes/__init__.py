"""One APIRouter per area: `api` (health, model, predict), `ws` (the websocket), `play`, `web` (the UI)."""
