"""What the UI tests share: the token the test apps take."""

TOKEN = "ui-test-token-" + "y" * 24
