environment = "staging"
project_id  = "energent-staging"
api_url     = "https://api.staging.energent.ai"
admin_cidrs = ["203.0.113.0/24"]
alert_email = "oncall@energent.ai"
min_nodes   = 1
max_nodes   = 5
