bucket = "energent-tfstate-production"
prefix = "platform"
