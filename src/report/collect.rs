//! Reading one provider for the report and the plan, kept compact: a listing of 100,000s of
//! seats is held as small fixed-size rows pointing into one table of holders, whose strings share
//! one buffer, so memory grows by tens of bytes per seat rather than by a copy of every string.

use std::collections::HashMap;
use std::hash::BuildHasher;

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use hashbrown::HashTable;

use licensekit_core::{
    AssignmentFilter, Error, Holder, HolderId, LicenseProvider, Product, ProductId, ProviderKind,
    Result,
};

use super::{ListingChange, listing_change};

/// Everything collected from one provider (read by the report and by [`crate::plan`]).
pub(crate) struct Collected {
    pub(crate) provider: ProviderKind,
    pub(crate) products: Vec<Product>,
    /// Every product id a seat names: the listed products' own, in order, then any a seat names
    /// that the product listing did not.
    product_ids: Vec<ProductId>,
    pub(crate) holders: Holders,
    /// Seats in listing order.
    pub(crate) seats: Vec<Seat>,
    /// Whether the provider has a user directory (it was read into [`Holders`]).
    pub(crate) has_directory: bool,
    pub(crate) changed_during_listing: Vec<ListingChange>,
}

/// One assignment: indexes into [`Collected::product_id`] and [`Holders`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Seat {
    pub(crate) product: u32,
    pub(crate) holder: u32,
    pub(crate) assigned_at: Option<DateTime<Utc>>,
}

impl Collected {
    /// The id of a seat's product.
    pub(crate) fn product_id(&self, product: u32) -> &ProductId {
        &self.product_ids[product as usize]
    }

    /// How many product ids seats may name (see [`Seat::product`]).
    pub(crate) fn product_count(&self) -> usize {
        self.product_ids.len()
    }

    /// Holders in the user directory; `None` without a directory.
    pub(crate) fn directory_len(&self) -> Option<usize> {
        self.has_directory
            .then(|| self.holders.iter().filter(|h| h.in_directory()).count())
    }

    /// Whether a user holder is missing from a directory the provider has.
    pub(crate) fn unknown_to_directory(&self, holder: &HolderRef<'_>) -> bool {
        self.has_directory && !holder.is_device() && !holder.in_directory()
    }
}

/// Reads one provider's products, assignments and (when it has one) user directory.
pub(crate) async fn collect_one(
    provider: &dyn LicenseProvider,
    progress: &(dyn Fn(ProviderKind, u64) + Sync),
) -> Result<Collected> {
    let kind = provider.kind();
    let products = provider.products().await?;
    let mut changed_during_listing: Vec<ListingChange> = products
        .iter()
        .find_map(|p| listing_change("products", &p.vendor))
        .into_iter()
        .collect();
    let mut product_ids: Vec<ProductId> = products.iter().map(|p| p.id.clone()).collect();
    let mut product_index: HashMap<ProductId, u32> = HashMap::new();
    for (i, id) in product_ids.iter().enumerate() {
        product_index.entry(id.clone()).or_insert(to_u32(i)?);
    }
    let mut holders = Holders::default();
    let mut seats = Vec::new();
    let mut stream = provider.assignments(AssignmentFilter::all());
    let mut assignments_changed = None;
    while let Some(a) = stream.try_next().await? {
        if let Some(change) = listing_change("assignments", &a.vendor) {
            assignments_changed = Some(change);
        }
        let product = match product_index.get(&a.product) {
            Some(&i) => i,
            None => {
                let i = to_u32(product_ids.len())?;
                product_ids.push(a.product.clone());
                product_index.insert(a.product, i);
                i
            }
        };
        let holder = holders.add_listed(&a.holder)?;
        seats.push(Seat {
            product,
            holder,
            assigned_at: a.assigned_at,
        });
        if seats.len() % 500 == 0 {
            progress(kind, seats.len() as u64);
        }
    }
    progress(kind, seats.len() as u64);
    changed_during_listing.extend(assignments_changed);
    let has_directory = provider.capabilities().holder_directory;
    if has_directory {
        let mut stream = provider.holders();
        while let Some(h) = stream.try_next().await? {
            holders.add_from_directory(&h)?;
        }
    }
    seats.shrink_to_fit();
    holders.shrink_to_fit();
    Ok(Collected {
        provider: kind,
        products,
        product_ids,
        holders,
        seats,
        has_directory,
        changed_during_listing,
    })
}

fn to_u32(i: usize) -> Result<u32> {
    u32::try_from(i).map_err(|_| Error::invalid_input("a listing has more than 2^32 entries"))
}

/// A run of [`Holders::text`].
#[derive(Debug, Clone, Copy)]
struct Span {
    start: u32,
    len: u32,
}

/// What is known of one holder; strings are spans of the shared text.
#[derive(Debug, Clone, Copy)]
struct Entry {
    id: Span,
    email: Option<Span>,
    display_name: Option<Span>,
    last_login: Option<DateTime<Utc>>,
    active: Option<bool>,
    device: bool,
    in_directory: bool,
}

/// Every holder of one provider once, by id: what the directory says, gaps filled from what the
/// assignment rows said. Neither the report nor the plan reads a holder's vendor fields, so they
/// are not kept.
#[derive(Default)]
pub(crate) struct Holders {
    text: String,
    entries: Vec<Entry>,
    /// Indexes into `entries`, hashed by (kind, id).
    index: HashTable<u32>,
    hasher: hashbrown::DefaultHashBuilder,
}

impl Holders {
    /// The holder of an assignment row: added when new, else left as first seen.
    fn add_listed(&mut self, holder: &Holder) -> Result<u32> {
        match self.find(&holder.id) {
            Some(i) => Ok(i),
            None => self.insert(holder, false),
        }
    }

    /// A directory entry: the directory's data wins, gaps are filled from the assignment rows.
    fn add_from_directory(&mut self, holder: &Holder) -> Result<u32> {
        let Some(i) = self.find(&holder.id) else {
            return self.insert(holder, true);
        };
        let old = self.entries[i as usize];
        let email = self.replace(old.email, holder.email.as_deref())?;
        let display_name = self.replace(old.display_name, holder.display_name.as_deref())?;
        let entry = &mut self.entries[i as usize];
        entry.email = email;
        entry.display_name = display_name;
        entry.active = holder.active.or(old.active);
        entry.last_login = holder.last_login.or(old.last_login);
        entry.in_directory = true;
        Ok(i)
    }

    /// `new` when given (reusing the old span when the text is the same), else `old`.
    fn replace(&mut self, old: Option<Span>, new: Option<&str>) -> Result<Option<Span>> {
        match (old, new) {
            (Some(span), Some(text)) if self.text(span) == text => Ok(Some(span)),
            (_, Some(text)) => self.push(text).map(Some),
            (old, None) => Ok(old),
        }
    }

    fn insert(&mut self, holder: &Holder, in_directory: bool) -> Result<u32> {
        let entry = Entry {
            id: self.push(holder.id.as_str())?,
            email: holder.email.as_deref().map(|e| self.push(e)).transpose()?,
            display_name: holder
                .display_name
                .as_deref()
                .map(|n| self.push(n))
                .transpose()?,
            last_login: holder.last_login,
            active: holder.active,
            device: matches!(holder.id, HolderId::Device(_)),
            in_directory,
        };
        let i = to_u32(self.entries.len())?;
        self.entries.push(entry);
        let Holders {
            text,
            entries,
            index,
            hasher,
        } = self;
        let hash = hasher.hash_one((entry.device, holder.id.as_str()));
        index.insert_unique(hash, i, |&j| {
            let e = &entries[j as usize];
            hasher.hash_one((e.device, span_text(text, e.id)))
        });
        Ok(i)
    }

    fn push(&mut self, s: &str) -> Result<Span> {
        // Spans are u32: where the new text ends must fit too.
        let end = self.text.len().checked_add(s.len());
        if end.and_then(|end| u32::try_from(end).ok()).is_none() {
            return Err(Error::invalid_input(
                "the holders of one listing exceed 4 GiB of text",
            ));
        }
        let span = Span {
            start: self.text.len() as u32,
            len: s.len() as u32,
        };
        self.text.push_str(s);
        Ok(span)
    }

    fn text(&self, span: Span) -> &str {
        span_text(&self.text, span)
    }

    fn find(&self, id: &HolderId) -> Option<u32> {
        let device = matches!(id, HolderId::Device(_));
        let hash = self.hasher.hash_one((device, id.as_str()));
        self.index
            .find(hash, |&j| {
                let e = &self.entries[j as usize];
                e.device == device && self.text(e.id) == id.as_str()
            })
            .copied()
    }

    fn shrink_to_fit(&mut self) {
        self.text.shrink_to_fit();
        self.entries.shrink_to_fit();
    }

    /// The holder with this id, if any seat or the directory named it.
    pub(crate) fn get(&self, id: &HolderId) -> Option<HolderRef<'_>> {
        self.find(id).map(|i| self.at(i))
    }

    /// The holder a [`Seat::holder`] points at.
    pub(crate) fn at(&self, i: u32) -> HolderRef<'_> {
        HolderRef {
            holders: self,
            entry: &self.entries[i as usize],
        }
    }

    /// How many holders are known.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Every holder, in the order first seen.
    pub(crate) fn iter(&self) -> impl Iterator<Item = HolderRef<'_>> {
        self.entries.iter().map(move |entry| HolderRef {
            holders: self,
            entry,
        })
    }
}

fn span_text(text: &str, span: Span) -> &str {
    let start = span.start as usize;
    text.get(start..start + span.len as usize)
        .unwrap_or_default()
}

/// A view of one holder in [`Holders`].
#[derive(Clone, Copy)]
pub(crate) struct HolderRef<'a> {
    holders: &'a Holders,
    entry: &'a Entry,
}

impl<'a> HolderRef<'a> {
    /// The vendor's id (or a device's serial) without its kind.
    pub(crate) fn id_str(&self) -> &'a str {
        self.holders.text(self.entry.id)
    }
    /// The holder's id, owned.
    pub(crate) fn id(&self) -> HolderId {
        match self.entry.device {
            true => HolderId::Device(self.id_str().to_owned()),
            false => HolderId::User(self.id_str().to_owned()),
        }
    }
    pub(crate) fn is_device(&self) -> bool {
        self.entry.device
    }
    pub(crate) fn email(&self) -> Option<&'a str> {
        self.entry.email.map(|s| self.holders.text(s))
    }
    pub(crate) fn display_name(&self) -> Option<&'a str> {
        self.entry.display_name.map(|s| self.holders.text(s))
    }
    pub(crate) fn active(&self) -> Option<bool> {
        self.entry.active
    }
    pub(crate) fn last_login(&self) -> Option<DateTime<Utc>> {
        self.entry.last_login
    }
    pub(crate) fn in_directory(&self) -> bool {
        self.entry.in_directory
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(id: HolderId, email: Option<&str>, name: Option<&str>) -> Holder {
        let mut h = Holder::new(id);
        h.email = email.map(str::to_owned);
        h.display_name = name.map(str::to_owned);
        h
    }

    #[test]
    fn a_holder_is_kept_once_and_the_directory_fills_and_wins() {
        let mut holders = Holders::default();
        let ada = HolderId::user("ada");
        let listed = holder(ada.clone(), Some("ada@old.example"), Some("Ada"));
        let first = holders.add_listed(&listed).unwrap();
        // A later row for the same holder changes nothing.
        let again = holder(ada.clone(), Some("other@example.com"), None);
        assert_eq!(holders.add_listed(&again).unwrap(), first);
        assert_eq!(holders.len(), 1);

        let mut from_directory = holder(ada.clone(), Some("ada@example.com"), None);
        from_directory.active = Some(false);
        assert_eq!(holders.add_from_directory(&from_directory).unwrap(), first);
        let ada_now = holders.get(&ada).unwrap();
        assert_eq!(
            ada_now.email(),
            Some("ada@example.com"),
            "the directory wins"
        );
        assert_eq!(ada_now.display_name(), Some("Ada"), "gaps are filled");
        assert_eq!(ada_now.active(), Some(false));
        assert!(ada_now.in_directory());
        assert_eq!(ada_now.id(), ada);

        // A device and a user with the same text are different holders.
        let device = HolderId::device("ada");
        holders
            .add_listed(&holder(device.clone(), None, None))
            .unwrap();
        assert_eq!(holders.len(), 2);
        assert!(holders.get(&device).unwrap().is_device());
        assert!(!holders.get(&device).unwrap().in_directory());
        assert!(holders.get(&HolderId::user("bob")).is_none());
    }

    #[test]
    fn unchanged_directory_text_is_not_stored_twice() {
        let mut holders = Holders::default();
        let bob = holder(HolderId::user("bob"), Some("bob@example.com"), Some("Bob"));
        holders.add_listed(&bob).unwrap();
        let before = holders.text.len();
        holders.add_from_directory(&bob).unwrap();
        assert_eq!(holders.text.len(), before);
    }
}
