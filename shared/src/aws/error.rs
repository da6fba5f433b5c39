//! One readable line from an AWS SDK error, for logs and domain errors.

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

pub fn detail<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
    e: &SdkError<E, R>,
) -> String {
    match e {
        SdkError::ServiceError(se) => format!(
            "{}: {}",
            se.err().code().unwrap_or("ServiceError"),
            se.err().message().unwrap_or_default()
        ),
        other => format!("{other:?}").chars().take(300).collect(),
    }
}
