// Every text of the checkout terminal, one table per language (zh-CN first). Placeholders
// are written {name} and filled by `t(key, {name: value})`.

const zh = {
  "app.title": "收银台 · 数字消费券核销",
  "app.loading": "正在启动…",
  "lang.switch": "English",
  "lang.switchLabel": "Switch to English",

  "pair.title": "终端配对",
  "pair.intro": "请输入管理员提供的一次性配对码，或扫描配对二维码打开本页面。",
  "pair.code": "配对码",
  "pair.submit": "配对",
  "pair.busy": "正在配对…",
  "pair.empty": "请输入配对码",
  "pair.invalid": "配对码无效、已使用或已过期，请向管理员索取新的配对码",
  "pair.badSecret": "服务器返回的终端密钥格式不正确，请联系管理员",
  "pair.revoked": "终端已失效，请重新配对",
  "pair.unpaired": "已解除配对",

  "header.terminal": "终端 {id}",
  "header.unpair": "解除配对",
  "unpair.confirm": "确定解除本终端的配对吗？解除后需要管理员重新发放配对码。",
  "unpair.failed": "解除配对失败：{reason}",

  "tab.label": "功能切换",
  "tab.checkout": "收款",
  "tab.today": "今日记录",

  "mode.label": "交易类型",
  "mode.sale": "直接核销",
  "mode.hold": "押金/预授权",

  "scan.label": "券码（扫码枪扫描或手动输入）",
  "scan.empty": "请扫描或输入券码",
  "camera.open": "摄像头扫码",
  "camera.close": "关闭摄像头",
  "camera.title": "请将顾客的券码二维码对准摄像头",
  "camera.unavailable": "无法打开摄像头：{reason}",
  "camera.denied": "没有摄像头权限，请在浏览器设置中允许",
  "camera.none": "未找到可用的摄像头",
  "camera.starting": "正在打开摄像头…",

  "amount.label": "订单金额（元，其他优惠之后）",
  "amount.invalid": "请输入正确的金额（元，最多两位小数，大于 0）",
  "amount.empty": "请输入订单金额",

  "quote.title": "优惠试算",
  "quote.loading": "正在试算…",
  "quote.discount": "优惠金额",
  "quote.toPay": "顾客实付",
  "quote.failed": "暂时无法试算（{reason}），仍可直接确认",

  "confirm.sale": "确认核销",
  "confirm.hold": "确认预授权",
  "confirm.busy": "正在处理…",
  "confirm.waiting": "上一笔请求仍在处理，正在等待结果…",
  "confirm.retrying": "网络繁忙，正在重试…",

  "result.approved": "核销成功",
  "result.held": "预授权成功",
  "result.declined": "无法核销",
  "result.discount": "优惠金额",
  "result.toPay": "顾客实付",
  "result.order": "订单金额",
  "result.orderRef": "订单号",
  "result.holdUntil": "预授权保留至",
  "result.unknown":
    "未能确认交易结果（{reason}）。请再次点击确认重试——同一笔交易不会重复核销。",
  "sale.new": "开始新交易",

  "holds.title": "未完成的预授权",
  "holds.none": "没有未完成的预授权",
  "holds.capture": "完成收款",
  "holds.void": "撤销",
  "holds.captureLabel": "完成收款：订单 {ref}",
  "holds.voidLabel": "撤销预授权：订单 {ref}",
  "holds.captured": "预授权已完成收款：订单 {ref}",
  "holds.voided": "预授权已撤销：订单 {ref}",

  "today.title": "今日记录（{date}）",
  "today.refresh": "刷新",
  "today.loading": "正在加载…",
  "today.failed": "加载失败：{reason}",
  "today.count": "笔数",
  "today.order": "订单总额",
  "today.discount": "优惠合计",
  "today.reversed": "退回优惠",
  "today.net": "应结算优惠（净额）",
  "today.empty": "今日暂无交易",
  "today.list": "今日交易明细",
  "today.col.time": "时间",
  "today.col.ref": "订单号",
  "today.col.amount": "订单金额",
  "today.col.discount": "优惠",
  "today.col.status": "状态",
  "today.col.refunds": "退款",
  "today.col.actions": "操作",
  "today.reversedShort": "已退优惠 {amount}",
  "today.noRefund": "—",

  "refund.open": "退款",
  "refund.openLabel": "退款：订单 {ref}",
  "refund.title": "退款：订单 {ref}",
  "refund.amount": "退款金额（元）",
  "refund.hintAll": "默认为全部未退金额，可改小做部分退款（单次使用券只能全额退款）；留空也表示退还全部未退金额",
  "refund.placeholderAll": "全部未退金额",
  "refund.submit": "确认退款",
  "refund.cancel": "取消",
  "refund.busy": "正在退款…",
  "refund.invalid": "请输入正确的退款金额",
  "refund.tooMuch": "退款金额不能超过订单金额",
  "refund.done": "已退款 {refund}，退回优惠 {discount}",
  "refund.restored": "券已恢复可用",
  "refund.nothing": "该笔已全部退款，无需再退",

  "status.approved": "已核销",
  "status.held": "预授权中",
  "status.captured": "已完成（预授权）",
  "status.voided": "已撤销",
  "status.expired": "已超时释放",

  "decline.VOUCHER_ALREADY_REDEEMED": "该券已使用",
  "decline.VOUCHER_EXPIRED": "该券已过期",
  "decline.VOUCHER_NOT_YET_VALID": "该券尚未生效",
  "decline.MERCHANT_CATEGORY_MISMATCH": "本店行业不适用该券",
  "decline.OUTSIDE_ISSUING_PLACE": "该券不能在本地区使用",
  "decline.MERCHANT_NOT_APPROVED": "本店未加入该券活动",
  "decline.BELOW_THRESHOLD": "未达到满减门槛",
  "decline.BUDGET_EXHAUSTED": "活动补贴已用完",
  "decline.CODE_STALE": "券码已过期，请顾客刷新",
  "decline.CODE_REVOKED": "该券码已失效，请顾客刷新",
  "decline.TOKEN_INVALID": "无效的券码",
  "decline.VOUCHER_NOT_FOUND": "未找到该券",
  "decline.other": "无法核销：{message}",

  "notice.CAP_EXHAUSTED": "该顾客补贴额度已用完（按原价）",
  "notice.BUDGET_EXHAUSTED": "活动补贴已用完（部分优惠）",

  "error.NETWORK": "网络异常，无法连接服务器",
  "error.BUSY": "服务繁忙，请稍后重试",
  "error.IN_FLIGHT": "上一笔请求仍在处理，请稍后再点确认",
  "error.IDEMPOTENCY_KEY_REUSED":
    "本笔交易已用不同的券码或金额提交过，请到“今日记录”核对后开始新交易",
  "error.ORDER_REF_USED": "订单号已被使用，请到“今日记录”核对后开始新交易",
  "error.HOLD_RESOLVED": "该预授权已处理过",
  "error.HOLD_EXPIRED": "该预授权已超时释放",
  "error.NOT_REVERSIBLE": "该笔交易不能退款",
  "error.REFUND_WINDOW_CLOSED": "已超过退款期限",
  "error.REFUND_NOT_ALLOWED": "不允许该退款（单次使用券只能全额退款，且不能超过未退金额）",
  "error.REDEMPTION_NOT_FOUND": "未找到该笔交易",
  "error.MERCHANT_NOT_ACTIVE": "本店已停用，请联系管理员",
  "error.INVALID_FIELD": "输入有误：{message}",
  "error.other": "操作失败（{code}）",
} as const;

export type TextKey = keyof typeof zh;

const en: Record<TextKey, string> = {
  "app.title": "Till · digital voucher redemption",
  "app.loading": "Starting…",
  "lang.switch": "中文",
  "lang.switchLabel": "切换到中文",

  "pair.title": "Pair this terminal",
  "pair.intro": "Enter the one-time pairing code from your administrator, or open this page by scanning the pairing QR code.",
  "pair.code": "Pairing code",
  "pair.submit": "Pair",
  "pair.busy": "Pairing…",
  "pair.empty": "Enter the pairing code",
  "pair.invalid": "The pairing code is invalid, used or expired: ask the administrator for a new one",
  "pair.badSecret": "The server sent a malformed terminal key: contact the administrator",
  "pair.revoked": "This terminal is no longer valid: pair it again",
  "pair.unpaired": "The terminal was unpaired",

  "header.terminal": "Terminal {id}",
  "header.unpair": "Unpair",
  "unpair.confirm": "Unpair this terminal? The administrator will have to issue a new pairing code.",
  "unpair.failed": "Could not unpair: {reason}",

  "tab.label": "Sections",
  "tab.checkout": "Checkout",
  "tab.today": "Today",

  "mode.label": "Transaction type",
  "mode.sale": "Sale",
  "mode.hold": "Deposit / hold",

  "scan.label": "Voucher code (scan or type)",
  "scan.empty": "Scan or type the voucher code",
  "camera.open": "Scan with camera",
  "camera.close": "Close camera",
  "camera.title": "Point the camera at the customer's voucher QR code",
  "camera.unavailable": "Cannot open the camera: {reason}",
  "camera.denied": "No permission to use the camera: allow it in the browser settings",
  "camera.none": "No camera found",
  "camera.starting": "Opening the camera…",

  "amount.label": "Order amount (yuan, after other discounts)",
  "amount.invalid": "Enter a valid amount (yuan, up to two decimals, above 0)",
  "amount.empty": "Enter the order amount",

  "quote.title": "Discount preview",
  "quote.loading": "Calculating…",
  "quote.discount": "Discount",
  "quote.toPay": "Customer pays",
  "quote.failed": "No preview right now ({reason}); you can still confirm",

  "confirm.sale": "Confirm sale",
  "confirm.hold": "Confirm hold",
  "confirm.busy": "Processing…",
  "confirm.waiting": "The previous request is still being processed; waiting for its result…",
  "confirm.retrying": "The network is busy; retrying…",

  "result.approved": "Approved",
  "result.held": "Hold approved",
  "result.declined": "Declined",
  "result.discount": "Discount",
  "result.toPay": "Customer pays",
  "result.order": "Order amount",
  "result.orderRef": "Order",
  "result.holdUntil": "Held until",
  "result.unknown":
    "The result could not be confirmed ({reason}). Press confirm again to retry: the same sale is never redeemed twice.",
  "sale.new": "New sale",

  "holds.title": "Open holds",
  "holds.none": "No open holds",
  "holds.capture": "Capture",
  "holds.void": "Void",
  "holds.captureLabel": "Capture the hold of order {ref}",
  "holds.voidLabel": "Void the hold of order {ref}",
  "holds.captured": "Hold captured: order {ref}",
  "holds.voided": "Hold voided: order {ref}",

  "today.title": "Today ({date})",
  "today.refresh": "Refresh",
  "today.loading": "Loading…",
  "today.failed": "Could not load: {reason}",
  "today.count": "Sales",
  "today.order": "Order total",
  "today.discount": "Discounts",
  "today.reversed": "Discounts reversed",
  "today.net": "Net discount (settled)",
  "today.empty": "No transactions today",
  "today.list": "Today's transactions",
  "today.col.time": "Time",
  "today.col.ref": "Order",
  "today.col.amount": "Amount",
  "today.col.discount": "Discount",
  "today.col.status": "Status",
  "today.col.refunds": "Refunds",
  "today.col.actions": "Actions",
  "today.reversedShort": "{amount} discount reversed",
  "today.noRefund": "—",

  "refund.open": "Refund",
  "refund.openLabel": "Refund order {ref}",
  "refund.title": "Refund: order {ref}",
  "refund.amount": "Refund amount (yuan)",
  "refund.hintAll": "Defaults to everything not yet refunded; lower it for a partial refund (single-use vouchers only in full); empty also means everything left",
  "refund.placeholderAll": "Everything not yet refunded",
  "refund.submit": "Confirm refund",
  "refund.cancel": "Cancel",
  "refund.busy": "Refunding…",
  "refund.invalid": "Enter a valid refund amount",
  "refund.tooMuch": "The refund cannot exceed the order amount",
  "refund.done": "Refunded {refund}; discount given back {discount}",
  "refund.restored": "The voucher is usable again",
  "refund.nothing": "Already fully refunded: nothing to do",

  "status.approved": "Approved",
  "status.held": "Held",
  "status.captured": "Captured",
  "status.voided": "Voided",
  "status.expired": "Hold expired",

  "decline.VOUCHER_ALREADY_REDEEMED": "The voucher has already been used",
  "decline.VOUCHER_EXPIRED": "The voucher has expired",
  "decline.VOUCHER_NOT_YET_VALID": "The voucher is not valid yet",
  "decline.MERCHANT_CATEGORY_MISMATCH": "The voucher is not for this kind of shop",
  "decline.OUTSIDE_ISSUING_PLACE": "The voucher cannot be used in this area",
  "decline.MERCHANT_NOT_APPROVED": "This shop is not part of the voucher's campaign",
  "decline.BELOW_THRESHOLD": "The order does not reach the voucher's threshold",
  "decline.BUDGET_EXHAUSTED": "The campaign's subsidy is used up",
  "decline.CODE_STALE": "The code is out of date: ask the customer to refresh it",
  "decline.CODE_REVOKED": "The code is no longer valid: ask the customer to refresh it",
  "decline.TOKEN_INVALID": "Not a valid voucher code",
  "decline.VOUCHER_NOT_FOUND": "Voucher not found",
  "decline.other": "Declined: {message}",

  "notice.CAP_EXHAUSTED": "The customer's subsidy allowance is used up (full price)",
  "notice.BUDGET_EXHAUSTED": "The campaign's subsidy is used up (partial discount)",

  "error.NETWORK": "Network error: the server cannot be reached",
  "error.BUSY": "The service is busy: try again shortly",
  "error.IN_FLIGHT": "The previous request is still being processed: press confirm again shortly",
  "error.IDEMPOTENCY_KEY_REUSED":
    "This sale was already sent with another code or amount: check Today, then start a new sale",
  "error.ORDER_REF_USED": "This order reference is already used: check Today, then start a new sale",
  "error.HOLD_RESOLVED": "The hold was already resolved",
  "error.HOLD_EXPIRED": "The hold timed out and was released",
  "error.NOT_REVERSIBLE": "This transaction cannot be refunded",
  "error.REFUND_WINDOW_CLOSED": "The refund period has ended",
  "error.REFUND_NOT_ALLOWED":
    "This refund is not allowed (single-use vouchers are refunded only in full, never above what is left)",
  "error.REDEMPTION_NOT_FOUND": "Transaction not found",
  "error.MERCHANT_NOT_ACTIVE": "This shop is suspended: contact the administrator",
  "error.INVALID_FIELD": "Invalid input: {message}",
  "error.other": "Failed ({code})",
};

export type Lang = "zh-CN" | "en";

const tables: Record<Lang, Record<TextKey, string>> = { "zh-CN": zh, en };

let current: Lang = "zh-CN";

export function setLang(lang: Lang): void {
  current = lang;
  document.documentElement.lang = lang;
  document.title = tables[lang]["app.title"];
}

export function getLang(): Lang {
  return current;
}

/** The text of `key` in the current language, with {placeholders} filled. */
export function t(key: TextKey, params?: Record<string, string | number>): string {
  const text = tables[current][key];
  if (!params) return text;
  return text.replace(/\{(\w+)\}/g, (m, name: string) =>
    name in params ? String(params[name]) : m,
  );
}

/** Whether `key` is a text of the tables (for codes coming from the server). */
export function hasText(key: string): key is TextKey {
  return key in zh;
}
