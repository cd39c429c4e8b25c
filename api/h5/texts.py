"""The words of the mobile pages: Chinese first, English for browsers that prefer it, and
plainer wording in elder mode (关怀模式) where the ordinary wording is technical.

`TEXTS[key]` is `(zh, en)`; `CARE_TEXTS[key]` replaces it in elder mode.
"""

from __future__ import annotations

from api.languages import Language

TEXTS: dict[str, tuple[str, str]] = {
    "app_name": ("电子社保卡", "E-card"),
    "skip": ("跳到主要内容", "Skip to the main content"),
    "back": ("返回", "Back"),
    "care_on": ("关怀模式", "Elder mode"),
    "care_label": ("大字关怀模式", "Large-type elder mode"),
    "care_off": ("标准模式", "Standard mode"),
    "login_title": ("登录电子社保卡", "Sign in to your e-card"),
    "card_number": ("社会保障卡卡号", "Card number"),
    "pin": ("密码（6位数字）", "PIN (6 digits)"),
    "login_submit": ("登录", "Sign in"),
    "first_use": (
        "第一次在本机使用？启用电子社保卡",
        "First time on this phone? Activate the e-card",
    ),
    "activate_title": ("启用电子社保卡", "Activate the e-card"),
    "activate_intro": (
        "本机将绑定到您的社保卡。第一次启用时设置的密码就是您以后的登录密码。",
        "This phone will be bound to your card. The first activation sets your PIN.",
    ),
    "document_number": ("身份证号码", "ID document number"),
    "activate_submit": ("启用并登录", "Activate and sign in"),
    "card_title": ("我的电子社保卡", "My e-card"),
    "holder_name": ("姓名", "Name"),
    "region": ("发卡地", "Issued in"),
    "bank": ("合作银行", "Bank"),
    "status": ("状态", "Status"),
    "status_active": ("正常", "Active"),
    "status_lost": ("已挂失", "Reported lost"),
    "status_suspended": ("已暂停使用", "Suspended"),
    "status_cancelled": ("已注销", "Cancelled"),
    "status_pending": ("待启用", "Pending"),
    "status_replaced": ("已换卡", "Replaced"),
    "qr_heading": ("就医购药、乘车、办事请出示二维码", "Show this code to be scanned"),
    "qr_label": (
        "电子社保卡二维码，请出示给工作人员扫描",
        "E-card QR code: show it to the scanner",
    ),
    "qr_loading": ("正在生成二维码…", "Making your code…"),
    "qr_countdown": ("{s} 秒后自动刷新", "Refreshes in {s} s"),
    "qr_offline": (
        "网络已断开，二维码已隐藏。联网后会自动显示。",
        "You are offline: the code is hidden. It comes back when you are online.",
    ),
    "qr_hidden": (
        "页面在后台，二维码已隐藏。",
        "The page is in the background: the code is hidden.",
    ),
    "qr_failed": (
        "二维码暂时无法生成，请稍后再试。",
        "The code cannot be made just now; try again.",
    ),
    "qr_lost": (
        "此卡已挂失，二维码不可用。找到卡后可以解除挂失。",
        "This card is reported lost: no code is shown. Cancel the loss report when found.",
    ),
    "qr_suspended": (
        "此卡已暂停使用，二维码不可用。请联系社保服务机构。",
        "This card is suspended: no code is shown. Contact the service.",
    ),
    "qr_cancelled": ("此卡已注销，二维码不可用。", "This card is cancelled: no code is shown."),
    "qr_inactive": ("此卡目前不可用，二维码不可显示。", "This card cannot be used now: no code."),
    "qr_signed_out": ("登录已过期，请重新登录。", "Your session ended; sign in again."),
    "qr_pin_today": (
        "今天第一次出示二维码，请先输入密码。",
        "First code today: enter your PIN first.",
    ),
    "qr_resume": ("显示二维码", "Show the code"),
    "qr_pin_submit": ("显示二维码", "Show the code"),
    "menu": ("功能", "Services"),
    "report_loss": ("挂失", "Report the card lost"),
    "cancel_loss": ("解除挂失", "Cancel the loss report"),
    "change_pin": ("修改密码", "Change the PIN"),
    "access_log": ("谁查看了我的卡", "Who read my card"),
    "complaints": ("投诉与建议", "Complaints"),
    "more": ("更多功能", "More services"),
    "sign_out": ("退出登录", "Sign out"),
    "report_loss_title": ("挂失社保卡", "Report the card lost"),
    "report_loss_intro": (
        "挂失后，这张卡和它的所有二维码立即停止使用。找到卡后，可以用密码解除挂失。",
        "After the report, the card and every code of it stop working at once. "
        "When found, cancel the report with your PIN.",
    ),
    "report_loss_submit": ("确认挂失", "Report it lost"),
    "report_loss_done": ("已挂失。二维码已停止使用。", "Reported lost. The codes stop working."),
    "cancel_loss_title": ("解除挂失", "Cancel the loss report"),
    "cancel_loss_intro": (
        "输入密码解除挂失，卡和二维码恢复使用。",
        "Enter your PIN to cancel the report; the card and its code work again.",
    ),
    "cancel_loss_submit": ("解除挂失", "Cancel the report"),
    "cancel_loss_done": ("已解除挂失，可以正常使用。", "The loss report is cancelled."),
    "pin_title": ("修改密码", "Change the PIN"),
    "old_pin": ("当前密码", "Current PIN"),
    "new_pin": ("新密码（6位数字）", "New PIN (6 digits)"),
    "new_pin_again": ("再次输入新密码", "New PIN again"),
    "pin_submit": ("确认修改", "Change it"),
    "pin_done": ("密码已修改。", "The PIN is changed."),
    "pin_mismatch": ("两次输入的新密码不一致。", "The two new PINs differ."),
    "access_log_title": ("谁查看了我的卡", "Who read my card"),
    "access_log_intro": (
        "每次扫码或工作人员查询您的卡，都记录在这里。",
        "Every scan of your card and every read by staff is listed here.",
    ),
    "access_log_empty": ("还没有记录。", "Nothing yet."),
    "access_log_more": ("更早的记录", "Older entries"),
    "source_online_scan": ("扫码", "Scan"),
    "source_offline_scan": ("离线扫码", "Offline scan"),
    "source_operator_read": ("工作人员查询", "Read by staff"),
    "complaints_title": ("投诉与建议", "Complaints"),
    "complaints_empty": ("您还没有提交过投诉。", "You have filed no complaint."),
    "complaint_new": ("我要投诉", "File a complaint"),
    "complaint_kind": ("投诉类型", "About"),
    "kind_venue_refused_ecard": ("办事地点不接受电子社保卡", "A place refused the e-card"),
    "kind_suspected_misuse": ("怀疑卡被冒用", "Someone may be using my card"),
    "kind_wrong_disclosure": ("我的信息被不当查看", "My data was read wrongly"),
    "kind_other": ("其他", "Other"),
    "complaint_details": ("请说明情况", "What happened"),
    "complaint_submit": ("提交", "Send"),
    "complaint_filed": ("已提交。查询编号：{tracking}", "Sent. Tracking number: {tracking}"),
    "complaint_status_open": ("待处理", "Waiting"),
    "complaint_status_assigned": ("处理中", "Being handled"),
    "complaint_status_answered": ("已答复", "Answered"),
    "complaint_status_closed": ("已办结", "Closed"),
    "complaint_answer": ("答复", "Answer"),
    "signed_out": ("您已退出登录。", "You are signed out."),
    "error_credentials": ("卡号或密码不正确。", "The card number or PIN is not correct."),
    "error_activation": (
        "卡号、身份证号码或密码不正确。",
        "The card number, ID document number or PIN is not correct.",
    ),
    "error_pin": ("密码不正确。", "The PIN is not correct."),
    "error_locked": (
        "密码错误次数过多，已锁定到 {until}。",
        "Too many wrong PINs: locked until {until}.",
    ),
    "error_not_activated": (
        "本机还没有启用电子社保卡，请先启用。",
        "The e-card is not activated on this phone yet: activate it first.",
    ),
    "error_weak_pin": (
        "新密码太简单：请用6位数字，不要重复或连续的数字。",
        "The new PIN is too simple: 6 digits, no repeats or runs.",
    ),
    "error_transition": ("卡的当前状态不允许这样操作。", "The card's state does not allow this."),
    "error_too_many": ("尝试太频繁，请稍后再试。", "Too many tries: wait a moment."),
    "error_form": ("输入有误，请检查后再试。", "Please check what you entered."),
    "error_csrf": (
        "页面已过期，请返回重新操作。",
        "This page has expired: go back and try again.",
    ),
    "error_unbound": (
        "本机已与社保卡解除绑定，请重新启用。",
        "This phone was unbound from the card: activate it again.",
    ),
    "error_generic": ("操作没有成功，请稍后再试。", "That did not work; try again later."),
    "error_launch": (
        "链接已失效，请回到应用中重新打开。",
        "This link has expired: open the e-card from the app again.",
    ),
    "notifications": ("消息通知", "Notifications"),
    "notifications_empty": ("没有消息。", "No notifications."),
    "notifications_read": ("全部标为已读", "Mark all read"),
    "unread": ("未读", "New"),
    "channels": ("已授权的应用", "Linked apps"),
    "channels_intro": (
        "这些应用可以为您打开电子社保卡。解除授权后立即失效。",
        "These apps can open your e-card for you. Unlinking takes effect at once.",
    ),
    "channels_empty": ("没有授权任何应用。", "No app is linked."),
    "linked_at": ("授权于", "Linked"),
    "last_used": ("最近使用", "last used"),
    "unlink": ("解除授权", "Unlink"),
    "channel_unlinked": ("已解除授权。", "The app is unlinked."),
    "family": ("亲情服务", "Family"),
    "family_intro": (
        "您代为出示二维码的家人，以及可以为您出示二维码的家人。",
        "Relatives whose code you show, and relatives who may show yours.",
    ),
    "family_empty": ("还没有亲情账户。", "No family links yet."),
    "family_guardian": ("我照顾的家人", "A relative I help"),
    "family_ward": ("照顾我的家人", "A relative who helps me"),
    "family_status_pending": ("等待对方同意", "Waiting for consent"),
    "family_status_active": ("已生效", "Active"),
    "family_status_ended": ("已结束", "Ended"),
    "family_show_qr": ("出示家人的二维码", "Show their code"),
    "family_ward_qr": ("家人的电子社保卡二维码", "Your relative's e-card code"),
    "csrf_title": ("页面已过期", "Page expired"),
    "to_card": ("回到我的社保卡", "Back to my e-card"),
    "to_login": ("去登录", "Sign in"),
}

BANK_NAMES_ZH: dict[str, str] = {
    "ICBC": "中国工商银行",
    "CCB": "中国建设银行",
    "ABC": "中国农业银行",
    "BOC": "中国银行",
    "BOCOM": "交通银行",
    "JXBANK": "江西银行",
}
"""The cooperating banks (`app.cards.service.COOPERATING_BANKS`) by their Chinese names."""

CARE_TEXTS: dict[str, tuple[str, str]] = {
    "pin": ("密码", "PIN"),
    "qr_heading": ("请把这个码给工作人员扫", "Show this code to be scanned"),
    "qr_countdown": ("{s} 秒后换新码", "New code in {s} s"),
    "qr_offline": ("没有网络，码先藏起来了。有网后会自动出来。", "No network: the code is hidden."),
    "qr_lost": ("卡已挂失，不能用码。找到卡后点“解除挂失”。", "The card is reported lost."),
    "report_loss_intro": (
        "卡丢了就点下面的按钮。点完后，这张卡不能再用。找到卡后可以恢复。",
        "Lost your card? Press the button. The card stops working; you can undo it later.",
    ),
    "error_credentials": ("卡号或密码不对，请再试一次。", "Card number or PIN is wrong."),
    "error_pin": ("密码不对，请再试一次。", "The PIN is wrong. Try again."),
    "error_weak_pin": ("这个密码太简单了，请换一个。", "This PIN is too simple. Pick another."),
    "error_generic": ("没有办成，请过一会儿再试。", "It did not work. Try again later."),
    "access_log_intro": ("谁扫过您的卡，都在这里。", "Who scanned your card."),
}


def text(key: str, language: Language, *, care: bool) -> str:
    pair = (CARE_TEXTS.get(key) if care else None) or TEXTS[key]
    return pair[0] if language == "zh" else pair[1]
