"""The fitted model: everything a ``.vaekit`` file holds, and what runs on it."""
