//! How `history` pages through ListRuns: which request to send next and when to stop.
//!
//! Kept pure (page in, next request out) so the paging rules are tested without a server.

use memstress_proto::v1::{ListRunsRequest, ListRunsResponse, RunRecord};

/// Largest page ListRuns serves (the proto's bound on `ListRunsRequest.limit`).
pub(crate) const MAX_PAGE: u32 = 1000;

/// How many runs `history` lists when neither `--limit` nor `--all` is given.
pub(crate) const DEFAULT_LIMIT: u32 = 20;

/// How many runs to gather.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// At most this many (at least 1).
    Runs(u32),
    /// Every page until the server has no older runs.
    All,
}

/// The runs gathered and where to continue.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Listing {
    /// The runs, newest first, as the server sent them.
    pub runs: Vec<RunRecord>,
    /// The server's cursor for the runs older than these; empty when there are none.
    pub next_cursor: String,
}

/// Gathers ListRuns pages: ask [`Pager::next_request`], send it, hand the answer to
/// [`Pager::absorb`], repeat until there is no next request, then [`Pager::finish`].
#[derive(Debug, Clone)]
pub(crate) struct Pager {
    want: Want,
    listing: Listing,
    /// The cursor the next request carries.
    cursor: String,
    done: bool,
}

impl Pager {
    /// A pager starting at `cursor` ("" for the newest run).
    pub(crate) fn new(want: Want, cursor: String) -> Self {
        Pager {
            want,
            listing: Listing::default(),
            cursor,
            done: false,
        }
    }

    /// Runs still wanted (`None` for all).
    fn remaining(&self) -> Option<u32> {
        match self.want {
            Want::All => None,
            Want::Runs(n) => {
                let have = u32::try_from(self.listing.runs.len()).unwrap_or(u32::MAX);
                Some(n.saturating_sub(have))
            }
        }
    }

    /// The next page to ask for, or `None` when the listing is complete. A page asks for the
    /// runs still wanted, at most [`MAX_PAGE`], so the server's cursor stays exact.
    pub(crate) fn next_request(&self) -> Option<ListRunsRequest> {
        if self.done {
            return None;
        }
        let size = match self.remaining() {
            None => MAX_PAGE,
            Some(0) => return None,
            Some(n) => n.min(MAX_PAGE),
        };
        Some(ListRunsRequest {
            limit: Some(size),
            cursor: self.cursor.clone(),
        })
    }

    /// Takes in the answer to the last request. Stops when the server has no older runs, when
    /// enough runs are gathered, or when a page makes no progress (no runs, or the same cursor
    /// again), so a confused server cannot keep the client looping.
    pub(crate) fn absorb(&mut self, page: ListRunsResponse) {
        let no_progress = page.runs.is_empty() || page.next_cursor == self.cursor;
        self.listing.runs.extend(page.runs);
        if let Want::Runs(n) = self.want {
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            // A server that ignores the page size: show no more than asked for.
            self.listing.runs.truncate(n);
        }
        self.listing.next_cursor.clone_from(&page.next_cursor);
        self.cursor = page.next_cursor;
        if self.cursor.is_empty() || no_progress {
            self.done = true;
        }
    }

    /// The runs gathered and the cursor after them.
    pub(crate) fn finish(self) -> Listing {
        self.listing
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn run(n: u64) -> RunRecord {
        RunRecord {
            number: n,
            run_id: format!("run-{n}"),
            ..RunRecord::default()
        }
    }

    /// A server holding runs `total..=1` (newest first) serving at most `cap` per page; the
    /// cursor is the number of the last run sent.
    fn page(total: u64, cap: u32, req: &ListRunsRequest) -> ListRunsResponse {
        let below = if req.cursor.is_empty() {
            total + 1
        } else {
            req.cursor.parse::<u64>().unwrap()
        };
        let size = u64::from(req.limit.unwrap_or(50).min(cap));
        let runs: Vec<RunRecord> = (1..below).rev().take(size as usize).map(run).collect();
        let next_cursor = match runs.last() {
            Some(last) if last.number > 1 => last.number.to_string(),
            _ => String::new(),
        };
        ListRunsResponse { runs, next_cursor }
    }

    /// Drives a pager against [`page`]; returns the listing and the requests sent.
    fn drive(want: Want, total: u64, cap: u32) -> (Listing, Vec<ListRunsRequest>) {
        let mut pager = Pager::new(want, String::new());
        let mut sent = Vec::new();
        while let Some(req) = pager.next_request() {
            pager.absorb(page(total, cap, &req));
            sent.push(req);
            assert!(sent.len() < 100, "pager loops");
        }
        (pager.finish(), sent)
    }

    fn numbers(l: &Listing) -> Vec<u64> {
        l.runs.iter().map(|r| r.number).collect()
    }

    #[test]
    fn one_page_when_it_holds_the_limit() {
        let (l, sent) = drive(Want::Runs(20), 50, 1000);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].limit, Some(20));
        assert_eq!(sent[0].cursor, "");
        assert_eq!(l.runs.len(), 20);
        assert_eq!(l.runs[0].number, 50);
        assert_eq!(l.next_cursor, "31");
    }

    #[test]
    fn pages_ask_for_what_is_still_wanted() {
        // The server caps pages at 2: 5 runs take pages of 5, 3 and 1 asked (2, 2, 1 served).
        let (l, sent) = drive(Want::Runs(5), 7, 2);
        let limits: Vec<Option<u32>> = sent.iter().map(|r| r.limit).collect();
        assert_eq!(limits, vec![Some(5), Some(3), Some(1)]);
        let cursors: Vec<&str> = sent.iter().map(|r| r.cursor.as_str()).collect();
        assert_eq!(cursors, vec!["", "6", "4"]);
        assert_eq!(numbers(&l), vec![7, 6, 5, 4, 3]);
        assert_eq!(l.next_cursor, "3");
    }

    #[test]
    fn large_limits_page_at_most_1000() {
        let (l, sent) = drive(Want::Runs(2500), 3000, 5000);
        let limits: Vec<Option<u32>> = sent.iter().map(|r| r.limit).collect();
        assert_eq!(limits, vec![Some(1000), Some(1000), Some(500)]);
        assert_eq!(l.runs.len(), 2500);
        assert_eq!(l.next_cursor, "501");
    }

    #[test]
    fn limit_beyond_the_history_stops_at_the_end() {
        let (l, sent) = drive(Want::Runs(20), 3, 1000);
        assert_eq!(sent.len(), 1);
        assert_eq!(numbers(&l), vec![3, 2, 1]);
        assert_eq!(l.next_cursor, "");
    }

    #[test]
    fn all_reads_every_page() {
        let (l, sent) = drive(Want::All, 7, 3);
        assert_eq!(sent.len(), 3);
        assert!(sent.iter().all(|r| r.limit == Some(MAX_PAGE)));
        assert_eq!(numbers(&l), vec![7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(l.next_cursor, "");

        let (l, sent) = drive(Want::All, 0, 3);
        assert_eq!(sent.len(), 1);
        assert!(l.runs.is_empty());
    }

    #[test]
    fn starts_at_a_given_cursor() {
        let mut pager = Pager::new(Want::Runs(2), "5".into());
        let req = pager.next_request().unwrap();
        assert_eq!(req.cursor, "5");
        pager.absorb(page(9, 1000, &req));
        assert!(pager.next_request().is_none());
        assert_eq!(numbers(&pager.finish()), vec![4, 3]);
    }

    #[test]
    fn a_server_that_makes_no_progress_cannot_loop() {
        let mut pager = Pager::new(Want::All, String::new());
        pager.absorb(ListRunsResponse {
            runs: vec![run(3)],
            next_cursor: "3".into(),
        });
        assert!(pager.next_request().is_some());
        // Same cursor again.
        pager.absorb(ListRunsResponse {
            runs: vec![run(3)],
            next_cursor: "3".into(),
        });
        assert!(pager.next_request().is_none());

        let mut pager = Pager::new(Want::Runs(10), String::new());
        pager.absorb(ListRunsResponse {
            runs: vec![],
            next_cursor: "x".into(),
        });
        assert!(pager.next_request().is_none());
        assert_eq!(pager.finish().next_cursor, "x");
    }

    #[test]
    fn a_page_larger_than_asked_is_cut() {
        let mut pager = Pager::new(Want::Runs(2), String::new());
        pager.absorb(ListRunsResponse {
            runs: vec![run(5), run(4), run(3)],
            next_cursor: "3".into(),
        });
        assert!(pager.next_request().is_none());
        assert_eq!(numbers(&pager.finish()), vec![5, 4]);
    }
}
