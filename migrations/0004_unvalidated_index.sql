-- Contacts another program inserted and the daemon has not validated yet;
-- every sweep looks for them first, and without this index that look reads
-- the whole campaign.
CREATE INDEX contacts_unvalidated ON contacts(campaign_id, id) WHERE validated = 0;
