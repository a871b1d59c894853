//! Azure sign-in settings (migration 0007): the admin's choice of identity, the ARM
//! endpoint and extra token audiences. Never a secret.

use sqlx::Row;

use crate::{Catalog, Result, now};

impl Catalog {
    /// The Azure setting `key`, if set.
    ///
    /// # Errors
    /// Database failure.
    pub async fn azure_setting(&self, key: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT value FROM azure_settings WHERE key = ?1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(self.db())?;
        Ok(row.map(|r| r.get("value")))
    }

    /// Every Azure setting whose key starts with `prefix`, by key.
    ///
    /// # Errors
    /// Database failure.
    pub async fn azure_settings(&self, prefix: &str) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT key, value FROM azure_settings WHERE substr(key, 1, length(?1)) = ?1 ORDER BY key",
        )
        .bind(prefix)
        .fetch_all(&self.pool)
        .await
        .map_err(self.db())?;
        Ok(rows
            .iter()
            .map(|r| (r.get("key"), r.get("value")))
            .collect())
    }

    /// Set (`Some`) or clear (`None`) the Azure setting `key`; returns whether it was set
    /// before.
    ///
    /// # Errors
    /// Database failure.
    pub async fn set_azure_setting(&self, key: &str, value: Option<&str>) -> Result<bool> {
        let before = self.azure_setting(key).await?.is_some();
        match value {
            Some(v) => sqlx::query(
                "INSERT INTO azure_settings (key, value, changed_at) VALUES (?1, ?2, ?3) ON CONFLICT(key) DO UPDATE SET value = excluded.value, changed_at = excluded.changed_at",
            )
            .bind(key)
            .bind(v)
            .bind(now()),
            None => sqlx::query("DELETE FROM azure_settings WHERE key = ?1").bind(key),
        }
        .execute(&self.pool)
        .await
        .map_err(self.db())?;
        Ok(before)
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn settings_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let c = crate::Catalog::open(&dir.path().join("c.db"))
            .await
            .unwrap();
        assert_eq!(c.azure_setting("identity").await.unwrap(), None);
        assert!(
            !c.set_azure_setting("identity", Some("{\"kind\":\"auto\"}"))
                .await
                .unwrap()
        );
        assert!(
            c.set_azure_setting("identity", Some("{\"kind\":\"azure-cli\"}"))
                .await
                .unwrap()
        );
        c.set_azure_setting("audience:a.example", Some("s1"))
            .await
            .unwrap();
        c.set_azure_setting("audience:b.example", Some("s2"))
            .await
            .unwrap();
        assert_eq!(
            c.azure_settings("audience:").await.unwrap(),
            vec![
                ("audience:a.example".into(), "s1".into()),
                ("audience:b.example".into(), "s2".into())
            ]
        );
        assert!(
            c.set_azure_setting("audience:a.example", None)
                .await
                .unwrap()
        );
        assert_eq!(c.azure_settings("audience:").await.unwrap().len(), 1);
        assert_eq!(
            c.azure_setting("identity").await.unwrap().as_deref(),
            Some("{\"kind\":\"azure-cli\"}")
        );
    }
}
