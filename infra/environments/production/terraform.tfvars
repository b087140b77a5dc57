environment = "production"
project_id  = "energent-production"
api_url     = "https://api.energent.ai"
admin_cidrs = [] # the office or VPN ranges that may reach the control plane; none: only from inside the VPC
alert_email = "oncall@energent.ai"
min_nodes   = 3
max_nodes   = 10
