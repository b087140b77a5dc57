environment = "dev"
project_id  = "energent-dev"
api_url     = "https://api.dev.energent.ai"
admin_cidrs = [] # the office or VPN ranges that may reach the control plane; none: only from inside the VPC
alert_email = "oncall-dev@energent.ai"
min_nodes   = 1
max_nodes   = 3
