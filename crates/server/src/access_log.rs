//! What the access log writes of a request's path: secrets that travel in a path (invite
//! codes) are left out, so that the log does not hand out invitations.

use actix_web::dev::ServiceRequest;

/// Path parameters whose values are secrets.
const SECRET_PARAMS: [&str; 1] = ["{code}"];

/// The request's path for the log.
pub fn path(req: &ServiceRequest) -> String {
    let path = req.path();
    match req.request().resource_map().match_pattern(path) {
        Some(pattern) => redacted(&pattern, path),
        None => path.to_owned(),
    }
}

/// `path` with the segments that `pattern` names as secret replaced by `…`.
fn redacted(pattern: &str, path: &str) -> String {
    if !SECRET_PARAMS.iter().any(|p| pattern.contains(p)) {
        return path.to_owned();
    }
    let names: Vec<&str> = pattern.split('/').collect();
    path.split('/')
        .enumerate()
        .map(|(i, segment)| match names.get(i) {
            Some(name) if SECRET_PARAMS.contains(name) => "…",
            _ => segment,
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::redacted;

    #[test]
    fn invite_codes_are_left_out_and_everything_else_kept() {
        assert_eq!(redacted("/api/invites/{code}/accept", "/api/invites/s3cret/accept"), "/api/invites/…/accept");
        let revoke = "/api/conversations/01J/invites/s3cret";
        assert_eq!(redacted("/api/conversations/{id}/invites/{code}", revoke), "/api/conversations/01J/invites/…");
        assert_eq!(redacted("/api/messages/{id}", "/api/messages/01J"), "/api/messages/01J");
    }
}
