terraform {
  required_providers {
    herald = {
      source = "herald/herald"
    }
  }
}

# Both settings fall back to HERALD_ENDPOINT and HERALD_API_TOKEN.
provider "herald" {
  endpoint  = "https://herald.example.com"
  api_token = var.herald_token
}

variable "herald_token" {
  type      = string
  sensitive = true
}
