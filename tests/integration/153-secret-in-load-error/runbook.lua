-- The error comes before the declaration that names the secret: drrun reads
-- the declared names from the source before any code runs.
error("cannot start with " .. os.getenv("DRX_TOKEN"))

runbook {
	name = "secret-in-load-error",
	secrets = { "OTHER", 'DRX_TOKEN' },
}
