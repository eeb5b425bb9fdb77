//! Generated types for the `memstress.v1` gRPC API, shared by `stressd` and `stressctl`.

/// The `memstress.v1` package: messages, the `StressService` client and server.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod v1 {
    tonic::include_proto!("memstress.v1");
}

/// Encoded `FileDescriptorSet` of every proto in `proto/`, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/memstress_descriptor.bin"));

/// Formatting for the API's `*_unix_ms` fields, shared by stressd's log lines and stressctl's
/// output so both print the same timestamps (no date crate needed).
pub mod time {
    /// Days since 1970-01-01 to a proleptic Gregorian (year, month, day): Howard Hinnant's
    /// `civil_from_days`.
    pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097); // day of era, [0, 146096]
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
        let mp = (5 * doy + 2) / 153; // March-based month, [0, 11]
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        (year, month as u32, day as u32)
    }

    /// Unix milliseconds as an RFC 3339 UTC timestamp with milliseconds:
    /// "2026-11-27T06:05:01.123Z".
    pub fn format_unix_ms(unix_ms: i64) -> String {
        let days = unix_ms.div_euclid(86_400_000);
        let ms_of_day = unix_ms.rem_euclid(86_400_000);
        let (y, m, d) = civil_from_days(days);
        let secs = ms_of_day / 1000;
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
            secs / 3600,
            (secs % 3600) / 60,
            secs % 60,
            ms_of_day % 1000
        )
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn civil_dates() {
            assert_eq!(civil_from_days(0), (1970, 1, 1));
            assert_eq!(civil_from_days(-1), (1969, 12, 31));
            assert_eq!(civil_from_days(11_016), (2000, 2, 29));
            assert_eq!(civil_from_days(11_017), (2000, 3, 1));
            assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        }

        #[test]
        fn timestamps() {
            assert_eq!(format_unix_ms(0), "1970-01-01T00:00:00.000Z");
            assert_eq!(format_unix_ms(-1), "1969-12-31T23:59:59.999Z");
            assert_eq!(
                format_unix_ms(1_795_759_501_123),
                "2026-11-27T06:05:01.123Z"
            );
            assert_eq!(format_unix_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
            assert_eq!(
                format_unix_ms(1_709_251_199_999),
                "2024-02-29T23:59:59.999Z"
            );
        }
    }
}
