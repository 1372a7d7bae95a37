\set v random(1, :n)
BEGIN;
UPDATE voucher SET status = 'redeemed' WHERE id = :v AND status = 'issued';
INSERT INTO redemption (voucher_id, amount_fen, at) VALUES (:v, 2000, now());
COMMIT;
