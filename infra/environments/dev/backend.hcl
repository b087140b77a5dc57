bucket = "energent-tfstate-dev"
prefix = "platform"
