"""Operating the bot from anywhere: alerts (apprise), and the status and control API with its dashboard."""
