"""The explorer: a trained model in the browser (session: the model side; projection: the map;
server: the routes; facts: what the page says of the model; page.*: the page itself)."""
