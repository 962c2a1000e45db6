/**
 * The event prefixes each connected device subscribed to (its hello's list),
 * by product: an event is offered only to its own product's devices, so a
 * delivery costs what that product holds, not what the whole fleet does.
 */
export class DeviceSubscriptions {
  private readonly byDevice = new Map<string, { productId: string; prefixes: readonly string[] }>();
  private readonly byProduct = new Map<string, Set<string>>();

  /** The device's prefixes, as its latest hello lists them (it is kept with none: its hello was taken). */
  set(deviceId: string, productId: string, prefixes: readonly string[]): void {
    this.delete(deviceId);
    this.byDevice.set(deviceId, { productId, prefixes });
    if (prefixes.length === 0) return;
    let devices = this.byProduct.get(productId);
    if (!devices) this.byProduct.set(productId, (devices = new Set()));
    devices.add(deviceId);
  }

  delete(deviceId: string): void {
    const had = this.byDevice.get(deviceId);
    if (!had) return;
    this.byDevice.delete(deviceId);
    const devices = this.byProduct.get(had.productId);
    devices?.delete(deviceId);
    if (devices?.size === 0) this.byProduct.delete(had.productId);
  }

  /** The product's devices with a prefix of `name`. */
  *matching(productId: string, name: string): Iterable<string> {
    for (const deviceId of this.byProduct.get(productId) ?? []) {
      if (this.byDevice.get(deviceId)!.prefixes.some((p) => name.startsWith(p))) yield deviceId;
    }
  }

  /** Whether the device's hello was taken in its current session. */
  has(deviceId: string): boolean {
    return this.byDevice.has(deviceId);
  }

  /** Whether any device of the product subscribed to anything. */
  anyIn(productId: string): boolean {
    return this.byProduct.has(productId);
  }
}
