environment = "production"
project_id  = "energent-production"
api_url     = "https://api.energent.ai"
admin_cidrs = ["203.0.113.0/24"]
alert_email = "oncall@energent.ai"
min_nodes   = 3
max_nodes   = 10
