"""A workflow used only by the tests: its primary key is a UUID, and it is not an approval."""
