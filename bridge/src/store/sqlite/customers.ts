/** Customers (a product's end users), the devices they claim, and API users. */
import { hashSecret, verifySecret } from '../secrets.js';
import { StoreError } from '../store.js';
import type { ApiUser, Customer, CustomerStore } from '../store.js';
import { cleanName, parseJson, passwordHash, productKey, refusing } from './context.js';
import type { Ctx } from './context.js';
import { newId } from '../secrets.js';

export interface CustomerRaw {
  id: string;
  product_id: number;
  username: string;
  password_hash: string | null;
  created_at: number;
}

interface ApiUserRaw {
  id: string;
  username: string;
  org_id: string | null;
  product_id: number | null;
  scopes: string;
  created_at: number;
}

export function customer(r: CustomerRaw): Customer {
  return { id: r.id, productId: r.product_id, username: r.username, hasPassword: r.password_hash !== null, createdAt: new Date(r.created_at) };
}

function apiUser(r: ApiUserRaw): ApiUser {
  return { id: r.id, username: r.username, orgId: r.org_id, productId: r.product_id, scopes: parseJson<string[]>(r.scopes), createdAt: new Date(r.created_at) };
}

export function customerStore(ctx: Ctx): CustomerStore {
  const { db } = ctx;
  const insertCustomer = db.prepare('INSERT INTO customers (id, product_id, username, password_hash, created_at) VALUES (?, ?, ?, ?, ?)');
  const customerById = db.prepare<CustomerRaw>('SELECT * FROM customers WHERE id = ?');
  // Claiming: the device and the customer must be of one product, and the device held by no one else, checked in the same statement.
  const claim = db.prepare(
    'UPDATE devices SET customer_id = ? WHERE id = ? AND product_id = (SELECT product_id FROM customers WHERE id = ?) AND owner_user_id IS NULL AND (customer_id IS NULL OR customer_id = ?)',
  );
  const unclaim = db.prepare('UPDATE devices SET customer_id = NULL WHERE id = ? AND customer_id IS NOT NULL');
  const insertApiUser = db.prepare('INSERT INTO api_users (id, username, org_id, product_id, scopes, created_at) VALUES (?, ?, ?, ?, ?, ?)');
  const apiUserById = db.prepare<ApiUserRaw>('SELECT * FROM api_users WHERE id = ?');
  const customerByName = db.prepare<CustomerRaw>('SELECT * FROM customers WHERE product_id = ? AND username = ?');
  const customersOf = db.prepare<CustomerRaw>('SELECT * FROM customers WHERE product_id = ? ORDER BY username');
  // Uses idx_devices_customer.
  const devicesOfCustomer = db.prepare<{ id: string }>('SELECT id FROM devices WHERE customer_id = ? ORDER BY id');
  const setPassword = db.prepare('UPDATE customers SET password_hash = ? WHERE id = ?');
  const unclaimAll = db.prepare('UPDATE devices SET customer_id = NULL WHERE customer_id = ?');
  const deleteCustomer = db.prepare('DELETE FROM customers WHERE id = ?');
  const apiUsersOfOrg = db.prepare<ApiUserRaw>('SELECT * FROM api_users WHERE org_id = ? ORDER BY created_at, id');
  const apiUsersOfProduct = db.prepare<ApiUserRaw>('SELECT * FROM api_users WHERE product_id = ? ORDER BY created_at, id');
  const deleteApiUser = db.prepare('DELETE FROM api_users WHERE id = ?');
  const updateApiUser = db.prepare('UPDATE api_users SET username = ?, scopes = ? WHERE id = ?');
  // Tokens name their subject without a foreign key (three kinds of subject): revoke them with it.
  const revokeTokensOf = db.prepare('UPDATE access_tokens SET revoked_at = ? WHERE subject_kind = ? AND subject_id = ? AND revoked_at IS NULL');
  const removeCustomer = db.transaction((id: string, now: number) => {
    unclaimAll.run(id);
    revokeTokensOf.run(now, 'customer', id);
    return deleteCustomer.run(id).changes > 0;
  });
  const removeApiUser = db.transaction((id: string, now: number) => {
    revokeTokensOf.run(now, 'apiUser', id);
    return deleteApiUser.run(id).changes > 0;
  });

  return {
    async createCustomer(input) {
      const username = cleanName(input.username, 'a customer username').toLowerCase();
      const productId = productKey(input.productId);
      const hash = input.password === null ? null : await hashSecret(String(input.password), ctx.passwordCost);
      const id = newId();
      refusing({ unique: `customer ${username} exists in product ${productId}`, foreignKey: `no product ${productId}` }, () =>
        insertCustomer.run(id, productId, username, hash, ctx.now()),
      );
      return customer(customerById.get(id) as CustomerRaw);
    },

    async getCustomer(id) {
      const r = customerById.get(id);
      return r ? customer(r) : null;
    },

    async findCustomer(productId, username) {
      const r = typeof username === 'string' ? customerByName.get(productKey(productId), username.trim().toLowerCase()) : undefined;
      return r ? customer(r) : null;
    },

    async listCustomers(productId) {
      return customersOf.all(productKey(productId)).map(customer);
    },

    async customerDevices(customerId) {
      return devicesOfCustomer.all(customerId).map((r) => r.id);
    },

    async setCustomerPassword(id, password) {
      const hash = password === null ? null : await passwordHash(ctx, password);
      if (setPassword.run(hash, id).changes === 0) throw new StoreError('not_found', `no customer ${id}`);
    },

    async deleteCustomer(id) {
      return removeCustomer(id, ctx.now());
    },

    async verifyCustomerPassword(productId, username, password) {
      const r = typeof username === 'string' ? customerByName.get(productKey(productId), username.trim().toLowerCase()) : undefined;
      const ok = await verifySecret(typeof password === 'string' ? password : '', r ? r.password_hash : null, ctx.passwordCost);
      return ok && r ? customer(r) : null;
    },

    async claimDevice(deviceId, customerId) {
      if (!customerById.get(customerId)) throw new StoreError('not_found', `no customer ${customerId}`);
      if (claim.run(customerId, deviceId, customerId, customerId).changes === 0)
        throw new StoreError('not_found', `no device ${deviceId} in the customer's product that no one else holds`);
    },

    async unclaimDevice(deviceId) {
      return unclaim.run(deviceId).changes > 0;
    },

    async createApiUser(input) {
      const username = cleanName(input.username, 'an API user name');
      if (!Array.isArray(input.scopes) || input.scopes.some((x) => typeof x !== 'string')) throw new StoreError('invalid', 'scopes must be a list of action names');
      const orgId = input.orgId ?? null;
      const productId = input.productId !== undefined ? productKey(input.productId) : null;
      if ((orgId === null) === (productId === null)) throw new StoreError('invalid', 'an API user belongs to one org or one product');
      const id = newId();
      refusing({ foreignKey: orgId ? `no org ${orgId}` : `no product ${productId}`, check: 'an API user belongs to one org or one product' }, () =>
        insertApiUser.run(id, username, orgId, productId, JSON.stringify(input.scopes), ctx.now()),
      );
      return apiUser(apiUserById.get(id) as ApiUserRaw);
    },

    async getApiUser(id) {
      const r = apiUserById.get(id);
      return r ? apiUser(r) : null;
    },

    async listApiUsers(of) {
      return (of.orgId !== undefined ? apiUsersOfOrg.all(of.orgId) : apiUsersOfProduct.all(productKey(of.productId))).map(apiUser);
    },

    async updateApiUser(id, changes) {
      const r = apiUserById.get(id);
      if (!r) throw new StoreError('not_found', `no API user ${id}`);
      const before = apiUser(r);
      const username = changes.username === undefined ? before.username : cleanName(changes.username, 'an API user name');
      if (changes.scopes !== undefined && (!Array.isArray(changes.scopes) || changes.scopes.some((x) => typeof x !== 'string')))
        throw new StoreError('invalid', 'scopes must be a list of action names');
      updateApiUser.run(username, JSON.stringify(changes.scopes ?? before.scopes), id);
      return apiUser(apiUserById.get(id) as ApiUserRaw);
    },

    async deleteApiUser(id) {
      return removeApiUser(id, ctx.now());
    },
  };
}
