/** The signed-in user. */
import type { Route } from '../app.js';
import { ApiError } from '../errors.js';

export const userRoutes: Route[] = [
  [
    'GET', '/v1/user',
    async (req, { store }) => {
      const actor = await req.actor();
      if (actor.kind !== 'user') throw ApiError.of(403, 'Only a user has a profile');
      const user = await store.getUser(actor.userId);
      if (!user) throw ApiError.of(404, 'User not found');
      return { username: user.username, subscription_ids: [], account_info: {}, mfa: { enabled: false } };
    },
  ],
];
