/** Customers (a product's end users), the devices they claim, and API users. */
import { hashSecret } from '../secrets.js';
import { StoreError } from '../store.js';
import type { ApiUser, Customer, CustomerStore } from '../store.js';
import { cleanName, parseJson, productKey, refusing } from './context.js';
import type { Ctx } from './context.js';
import { newId } from '../secrets.js';

interface CustomerRaw {
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

function customer(r: CustomerRaw): Customer {
  return { id: r.id, productId: r.product_id, username: r.username, hasPassword: r.password_hash !== null, createdAt: new Date(r.created_at) };
}

function apiUser(r: ApiUserRaw): ApiUser {
  return { id: r.id, username: r.username, orgId: r.org_id, productId: r.product_id, scopes: parseJson<string[]>(r.scopes), createdAt: new Date(r.created_at) };
}

export function customerStore(ctx: Ctx): CustomerStore {
  const { db } = ctx;
  const insertCustomer = db.prepare('INSERT INTO customers (id, product_id, username, password_hash, created_at) VALUES (?, ?, ?, ?, ?)');
  const customerById = db.prepare<CustomerRaw>('SELECT * FROM customers WHERE id = ?');
  // Claiming: the device and the customer must be of one product, checked in the same statement.
  const claim = db.prepare(
    'UPDATE devices SET customer_id = ? WHERE id = ? AND product_id = (SELECT product_id FROM customers WHERE id = ?)',
  );
  const unclaim = db.prepare('UPDATE devices SET customer_id = NULL WHERE id = ? AND customer_id IS NOT NULL');
  const insertApiUser = db.prepare('INSERT INTO api_users (id, username, org_id, product_id, scopes, created_at) VALUES (?, ?, ?, ?, ?, ?)');
  const apiUserById = db.prepare<ApiUserRaw>('SELECT * FROM api_users WHERE id = ?');

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

    async claimDevice(deviceId, customerId) {
      if (!customerById.get(customerId)) throw new StoreError('not_found', `no customer ${customerId}`);
      if (claim.run(customerId, deviceId, customerId).changes === 0)
        throw new StoreError('not_found', `no device ${deviceId} in the customer's product`);
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
  };
}
