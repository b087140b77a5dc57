environment = "dev"
project_id  = "energent-dev"
api_url     = "https://api.dev.energent.ai"
admin_cidrs = ["203.0.113.0/24"]
alert_email = "oncall-dev@energent.ai"
min_nodes   = 1
max_nodes   = 3
