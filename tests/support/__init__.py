"""What tests share besides fixtures: servers and peers the suite starts, factories, and the
helpers that drive the API. Conftest files hold fixtures, which call these."""
