//! A public-style client against the simulator, written the way public clients that pass Yahoo's
//! sandbox are: raw XML labelled `application/x-www-form-urlencoded` on every XML call, orderCount
//! by GET with `sellerId`, the whole field table in orderInfo, and response headers looked up by
//! their exact names (`X-SWS-Authorize-Status`, `WWW-Authenticate`). It speaks HTTP/1.1 over a
//! bare TCP socket, so it sees the header names exactly as the simulator wrote them.

use base64::{Engine, engine::general_purpose::STANDARD};
use orderdesk::xml::Element;
use serde_json::json;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::sim::{Sim, public_key};

/// Sandbox seller IDs start with `snbx-`.
const SELLER: &str = "snbx-public";
const FORM: &str = "application/x-www-form-urlencoded";

/// orderInfo fields a production client asks for by default, from every group of Yahoo's table.
const INFO_FIELDS: &str = "OrderId,Version,ParentOrderId,DeviceType,IsSeen,IsSplit,CancelReason,OrderTime,\
LastUpdateTime,Suspect,OrderStatus,StoreStatus,BuyerComments,SellerComments,Notes,UseCouponData,IsReadOnly,\
FraudHoldStatus,PublicationTime,SocialGiftType,PayStatus,SettleStatus,PayType,PayKind,PayMethod,PayMethodName,\
PayDate,CardPayType,CardPayCount,NeedReceipt,BillFirstName,BillLastName,BillZipCode,BillPrefecture,BillCity,\
BillAddress1,BillAddress2,BillPhoneNumber,BillMailAddress,ShipStatus,ShipMethod,ShipMethodName,ShipRequestDate,\
ShipRequestTime,ShipNotes,ShipCompanyCode,ShipInvoiceNumber1,ShipInvoiceNumber2,ShipDate,ArrivalDate,\
NeedGiftWrap,GiftWrapType,ShipFirstName,ShipLastName,ShipZipCode,ShipPrefecture,ShipCity,ShipAddress1,\
ShipPhoneNumber,ExcellentDelivery,IsEazy,PayCharge,ShipCharge,GiftWrapCharge,Discount,Adjustments,SettleAmount,\
UsePoint,GiftCardDiscount,TotalPrice,SettlePayAmount,LineId,ItemId,Title,SubCode,SubCodeOption,ItemOption,\
Inscription,IsUsed,ImageId,IsTaxable,ItemTaxRatio,Jan,ProductId,CategoryId,UnitPrice,Quantity,CouponDiscount,\
OriginalPrice,SellerId,IsLogin,GuestAuthId";

/// An answer as read off the socket: header names exactly as sent.
struct RawAnswer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl RawAnswer {
    /// Case-sensitive, as `$headers['WWW-Authenticate']` in PHP.
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn xml(&self) -> Element {
        Element::parse(self.body.as_bytes()).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

struct Client<'a> {
    sim: &'a Sim,
    token: String,
}

impl Client<'_> {
    /// `seller:now` encrypted with the store's public key, as Yahoo's sample code does.
    async fn signature(&self) -> String {
        let now = self.sim.now().await;
        let cipher = public_key(1)
            .encrypt(&mut rand::thread_rng(), rsa::Pkcs1v15Encrypt, format!("{SELLER}:{now}").as_bytes())
            .unwrap();
        STANDARD.encode(cipher)
    }

    async fn send(&self, method: &str, target: &str, body: &str) -> RawAnswer {
        let signature = self.signature().await;
        let host = format!("{}:{}", self.sim.base.host_str().unwrap(), self.sim.base.port().unwrap());
        let mut request = format!(
            "{method} {target} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {FORM}\r\nAuthorization: Bearer {}\r\n\
             X-sws-signature: {signature}\r\nX-sws-signature-version: 1\r\nConnection: close\r\n",
            self.token
        );
        if method == "POST" {
            request.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        request.push_str("\r\n");
        request.push_str(body);
        let mut stream = TcpStream::connect(&host).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        parse(&raw)
    }

    async fn post_xml(&self, api: &str, xml: &str) -> RawAnswer {
        self.send("POST", &format!("/ShoppingWebService/V1/{api}"), xml).await
    }
}

fn parse(raw: &[u8]) -> RawAnswer {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete answer");
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(": ")).map(|(n, v)| (n.to_owned(), v.to_owned())).collect();
    let chunked = headers.iter().any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked { dechunk(body) } else { body.to_owned() };
    RawAnswer { status, headers, body }
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap();
        if size == 0 {
            break;
        }
        out.push_str(&after[..size]);
        rest = &after[size + 2..];
    }
    out
}

fn req(inner: &str) -> String {
    format!("<?xml version=\"1.0\"?>\n<Req>{inner}<SellerId>{SELLER}</SellerId></Req>\n")
}

#[tokio::test]
async fn a_public_style_client_works_against_the_simulator() {
    let sim = Sim::start().await;
    let (token, _) = sim.authorize(SELLER).await;
    assert_eq!(sim.key(SELLER, 1).await, 1);
    let item = |id: &str| json!([{ "item_id": id, "title": "テスト商品" }]);
    let new_order = sim.order(SELLER, json!({ "items": item("order-item"), "order_status": 2 })).await;
    let new_reserve = sim.order(SELLER, json!({ "items": item("reserve-item"), "order_status": 1 })).await;
    let (order_id, reserve_id) = (new_order["order_id"].as_str().unwrap(), new_reserve["order_id"].as_str().unwrap());
    let client = Client { sim: &sim, token };

    // orderCount: GET with the camelCase sellerId; the outcome header by its exact name.
    let count = client.send("GET", &format!("/ShoppingWebService/V1/orderCount?sellerId={SELLER}"), "").await;
    assert_eq!(count.status, 200, "{}", count.body);
    assert_eq!(count.header("X-SWS-Authorize-Status"), Some("authorized"), "{:?}", count.headers);
    assert!(count.header("Content-Type").is_some() && count.header("Date").is_some(), "{:?}", count.headers);
    let root = count.xml();
    let c = root.path(&["Result", "Count"]).unwrap();
    assert_eq!(
        (c.text_of("NewOrder"), c.text_of("NewReserve"), c.text_of("Holding")),
        (Some("1"), Some("1"), Some("0"))
    );

    // orderList by order ID, raw XML labelled as a form.
    let list = client
        .post_xml(
            "orderList",
            &req(&format!(
                "<Search><Condition><OrderId>{reserve_id}</OrderId></Condition><Field>OrderId,IsSeen,OrderStatus</Field></Search>"
            )),
        )
        .await;
    assert_eq!(list.status, 200, "{}", list.body);
    let root = list.xml();
    assert_eq!(root.text_of("Status"), Some("OK"));
    let info = root.path(&["Search", "OrderInfo"]).unwrap();
    assert_eq!((info.text_of("IsSeen"), info.text_of("OrderStatus")), (Some("false"), Some("1")));

    // orderInfo with a production client's default field list.
    let detail = client
        .post_xml(
            "orderInfo",
            &req(&format!("<Target><OrderId>{order_id}</OrderId><Field>{INFO_FIELDS}</Field></Target>")),
        )
        .await;
    assert_eq!(detail.status, 200, "{}", detail.body);
    let root = detail.xml();
    let o = root.path(&["Result", "OrderInfo"]).unwrap();
    assert_eq!((o.text_of("IsSeen"), o.text_of("OrderStatus")), (Some("false"), Some("2")));
    assert_eq!(o.path(&["Item", "ItemId"]).map(|e| e.text.as_str()), Some("order-item"));
    assert_eq!(o.path(&["Buyer", "IsLogin"]).map(|e| e.text.as_str()), Some("true"));

    // 予約中 → キャンセル, then キャンセル → 予約中: the refusal the sandbox test expects.
    let change = |to: u8| {
        req(&format!(
            "<Target><OrderId>{reserve_id}</OrderId><IsPointFix>false</IsPointFix></Target><Order><OrderStatus>{to}</OrderStatus><CancelReason>220</CancelReason></Order>"
        ))
    };
    let cancelled = client.post_xml("orderStatusChange", &change(4)).await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    assert!(cancelled.xml().path(&["Result", "Warning"]).is_none());
    let refused = client.post_xml("orderStatusChange", &change(1)).await;
    let root = refused.xml();
    assert_eq!(root.name, "Error");
    assert_eq!(root.text_of("Message"), Some("Cannot Be Operated : CancelOrder OrderStatus"));

    // setStock with a quantity that is not a number.
    let stock = client
        .send(
            "POST",
            "/ShoppingWebService/V1/setStock",
            &format!("seller_id={SELLER}&item_code=item-ok%2Citem-ng&quantity=5%2Cabc"),
        )
        .await;
    assert_eq!(stock.status, 200, "{}", stock.body);
    let root = stock.xml();
    assert_eq!((root.attr("ok"), root.attr("ng")), (Some("1"), Some("1")));
    let errors: Vec<Option<&str>> = root.children_named("Result").map(|r| r.text_of("ErrorCode")).collect();
    assert_eq!(errors, vec![None, Some("st-02104")]);

    // An expired token: the client finds WWW-Authenticate by its exact name.
    sim.advance(3601).await;
    let expired = client.send("GET", &format!("/ShoppingWebService/V1/orderCount?sellerId={SELLER}"), "").await;
    assert_eq!(expired.status, 401);
    let www = expired.header("WWW-Authenticate").unwrap_or_else(|| panic!("{:?}", expired.headers));
    assert!(www.contains(r#"error="invalid_token""#), "{www}");
    assert!(expired.headers.iter().all(|(n, _)| n != "www-authenticate" && n != "Www-Authenticate"));
}
