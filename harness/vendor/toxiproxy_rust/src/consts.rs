pub const ERR_LOCK: &str = "Lock cannot be granted";
pub const ERR_JSON_SERIALIZE: &str = "JSON serialization failed";
