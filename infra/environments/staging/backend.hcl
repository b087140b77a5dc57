bucket = "energent-tfstate-staging"
prefix = "platform"
