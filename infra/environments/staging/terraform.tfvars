environment = "staging"
project_id  = "energent-staging"
api_url     = "https://api.staging.energent.ai"
admin_cidrs = [] # the office or VPN ranges that may reach the control plane; none: only from inside the VPC
alert_email = "oncall@energent.ai"
min_nodes   = 1
max_nodes   = 5
