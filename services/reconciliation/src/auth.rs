//! Who runs a workflow step or reads a batch: an administrator identified by an API key,
//! checked the platform's way ([`voucher_platform::admin`]) against the hashed
//! `admin-keys.json` of the secrets directory, the only secret this job loads. The key itself
//! is read from a file (`--api-key-file`, mode 0600) so that it never appears in a process
//! list or shell history. A province officer covers every city of the province; a city
//! officer only its city (and counties).

use crate::error::ReconError;
use std::path::Path;
pub use voucher_core::AdminRole as Role;
pub use voucher_platform::admin::Admin;
use voucher_platform::admin::AdminKeys;
use voucher_platform::secrets::SecretsDir;

/// The administrator holding the key in `key_file`, among the administrators of
/// `secrets_dir`.
///
/// # Errors
/// A file cannot be read or parsed; [`ReconError::UnknownApiKey`].
pub fn admin_from_files(secrets_dir: &Path, key_file: &Path) -> Result<Admin, ReconError> {
    let entries = SecretsDir::new(secrets_dir)
        .admin_keys()
        .map_err(|e| ReconError::Usage(e.to_string()))?;
    AdminKeys::new(&entries)
        .find_in_file(key_file)
        .map_err(|source| ReconError::Io {
            path: key_file.display().to_string(),
            source,
        })?
        .ok_or(ReconError::UnknownApiKey)
}
