"""The agentic job: a squad of three roles editing a staged copy of a project through tools."""
