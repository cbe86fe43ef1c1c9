"""Provider delivery receipts: signature checks and the events each provider's body holds."""
