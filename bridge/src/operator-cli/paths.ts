/** API paths; every name from the command line is encoded, so a slug cannot change the path. */
const e = encodeURIComponent;

export const paths = {
  firmware: (product: string) => `/v1/products/${e(product)}/firmware`,
  release: (product: string) => `/v1/products/${e(product)}/firmware/release`,
  rollouts: (product: string) => `/v1/products/${e(product)}/rollouts`,
  rollout: (product: string, id: number) => `/v1/products/${e(product)}/rollouts/${id}`,
  device: (id: string) => `/v1/devices/${e(id)}`,
};
