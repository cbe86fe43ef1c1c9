"""Code shared by the API and the workers: settings, domain model, messaging, storage, providers."""
